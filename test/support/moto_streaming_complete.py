"""Completes moto's multipart uploads without holding the object in memory (a test-bed change only).

moto 5.2.1's FakeMultipart.complete joins every part into one bytearray and copies it to bytes
(about 2.2 x the object at peak), so a 20 GiB object cannot be completed on a 24 GiB machine. Here
the parts (each already spilled to a temporary file by moto's key buffer) are copied block by block
into one temporary file, which becomes the new object's buffer. S3's semantics are unchanged: the
same part checks (InvalidPart, EntityTooSmall, MalformedXML), the same "<md5 of part md5s>-<count>"
ETag, the same size and the same COMPOSITE checksum; a FULL_OBJECT checksum (which needs the whole
object) keeps moto's own path. Reading the object back (GetObject) still loads it whole in moto.
"""
import codecs
import tempfile

from moto.s3.exceptions import EntityTooSmall, InvalidPart, MalformedXML
from moto.s3.models import FakeKey, FakeMultipart, MultipartChecksumBuilder
from moto.settings import S3_UPLOAD_PART_MIN_SIZE, get_s3_default_key_buffer_size
from moto.utilities.utils import md5_hash

_BLOCK = 16 * 1024 * 1024


class JoinedParts:
    """The completed object's bytes, in a temporary file (spilled to disk past moto's key buffer)."""

    def __init__(self):
        self.file = tempfile.SpooledTemporaryFile(max_size=get_s3_default_key_buffer_size())
        self.size = 0

    def append(self, part):
        with part.lock:
            part._value_buffer.seek(0)
            while True:
                block = part._value_buffer.read(_BLOCK)
                if not block:
                    break
                self.file.write(block)
                self.size += len(block)

    def __len__(self):
        return self.size


_complete = FakeMultipart.complete


def _complete_streaming(self, body):
    checksum_algo = self.metadata.get("x-amz-checksum-algorithm")
    checksum_type = self.metadata.get("x-amz-checksum-type")
    checksum_builder = MultipartChecksumBuilder(checksum_algo, checksum_type)
    if checksum_builder.checksum_type != "COMPOSITE":
        # A full-object checksum is computed over the joined bytes in memory: moto's own path.
        return _complete(self, body)
    decode_hex = codecs.getdecoder("hex_codec")
    joined = JoinedParts()
    md5s = bytearray()
    last = None
    count = 0
    try:
        for pn, etag in body:
            part = self.parts.get(pn)
            part_etag = None
            if part is not None:
                part_etag = part.etag.replace('"', "")
                etag = etag.replace('"', "")
            if part is None or part_etag != etag:
                raise InvalidPart()
            if last is not None and last.contentsize < S3_UPLOAD_PART_MIN_SIZE:
                raise EntityTooSmall()
            md5s.extend(decode_hex(part_etag)[0])
            joined.append(part)
            # One part in memory at a time, for its checksum.
            checksum_builder.addPart(part.value)
            last = part
            count += 1
        if count == 0:
            raise MalformedXML
    except BaseException:
        joined.file.close()
        raise
    full_etag = md5_hash()
    full_etag.update(bytes(md5s))
    return joined, f"{full_etag.hexdigest()}-{count}", checksum_builder.build()


_value_setter = FakeKey.value.fset


def _set_value(self, new_value):
    if isinstance(new_value, JoinedParts):
        # The joined file becomes the key's buffer: no copy of the object in memory.
        self._value_buffer.close()
        self._value_buffer = new_value.file
        self.contentsize = new_value.size
        return
    _value_setter(self, new_value)


def install():
    FakeMultipart.complete = _complete_streaming
    FakeKey.value = FakeKey.value.setter(_set_value)

/**
 * Import this module before anything that loads `cloudinary` (statically: ES modules evaluate in
 * import order) so that the SDK chooses plain `http` for its API calls. It sets a placeholder
 * `CLOUDINARY_URL` with an `http://` upload prefix unless one is set; `pointSdkAt` then aims it at a
 * double.
 */
if (!/upload_prefix=http:/.test(process.env.CLOUDINARY_URL ?? '')) {
  process.env.CLOUDINARY_URL =
    'cloudinary://placeholder:placeholder@placeholder?upload_prefix=http://127.0.0.1:9';
}

export {};

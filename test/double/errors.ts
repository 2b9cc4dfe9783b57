/** An error the double turns into an HTTP answer; its message never holds a secret or a signature. */
export class DoubleHttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    /** Delivery answers put the reason in X-Cld-Error. */
    readonly cldError: string = message,
    readonly headers: Readonly<Record<string, string>> = {},
  ) {
    super(message);
    this.name = 'DoubleHttpError';
  }
}

export class BadRequest extends DoubleHttpError {
  constructor(message: string) {
    super(400, message);
    this.name = 'BadRequest';
  }
}

export class NotFound extends DoubleHttpError {
  constructor(message: string, cldError = 'Resource not found') {
    super(404, message, cldError);
    this.name = 'NotFound';
  }
}

export class Unauthorized extends DoubleHttpError {
  constructor(message: string, cldError = 'deny or ACL failure') {
    super(401, message, cldError);
    this.name = 'Unauthorized';
  }
}

export class Forbidden extends DoubleHttpError {
  constructor(message: string) {
    super(403, message);
    this.name = 'Forbidden';
  }
}

/** What a resource of the template stands for in the test bed: its `Ref` value and its `Fn::GetAtt` attributes. */
export interface BoundResource {
  ref: string;
  attributes: Record<string, string>;
}

export interface ResolveContext {
  region: string;
  accountId: string;
  stackName: string;
  /** The stack's ARN (AWS::StackId), for templates that name it. */
  stackId?: string;
  resources: Map<string, BoundResource>;
}

/** Thrown when a template value refers to something the test bed does not model. */
export class UnresolvableError extends Error {}

function pseudo(name: string, ctx: ResolveContext): string | undefined {
  const values: Record<string, string> = {
    'AWS::Region': ctx.region,
    'AWS::AccountId': ctx.accountId,
    'AWS::Partition': 'aws',
    'AWS::URLSuffix': 'amazonaws.com',
    'AWS::StackName': ctx.stackName,
    ...(ctx.stackId ? { 'AWS::StackId': ctx.stackId } : {}),
  };
  return values[name];
}

function bound(logicalId: string, ctx: ResolveContext, where: string): BoundResource {
  const resource = ctx.resources.get(logicalId);
  if (!resource)
    throw new UnresolvableError(`${where}: refers to ${logicalId}, which the test bed does not model`);
  return resource;
}

function substitute(text: string, vars: Record<string, string>, ctx: ResolveContext, where: string): string {
  return text.replace(/\$\{([^}]+)\}/gu, (_m, name: string) => {
    if (name in vars) return vars[name] ?? '';
    const p = pseudo(name, ctx);
    if (p !== undefined) return p;
    const [id, attr] = name.split('.');
    const resource = bound(id ?? '', ctx, where);
    if (!attr) return resource.ref;
    const value = resource.attributes[attr];
    if (value === undefined)
      throw new UnresolvableError(`${where}: ${id} has no attribute ${attr} in the test bed`);
    return value;
  });
}

/**
 * Resolves CloudFormation intrinsics (Ref, Fn::GetAtt, Fn::Join, Fn::Sub, Fn::Select, Fn::Split) in
 * `value` against the test bed's resources, as CloudFormation would against the deployed ones.
 */
export function resolveIntrinsics(value: unknown, ctx: ResolveContext, where: string): unknown {
  if (Array.isArray(value)) return value.map((v) => resolveIntrinsics(v, ctx, where));
  if (value === null || typeof value !== 'object') return value;
  const entries = Object.entries(value as Record<string, unknown>);
  if (entries.length !== 1) {
    return Object.fromEntries(entries.map(([k, v]) => [k, resolveIntrinsics(v, ctx, where)]));
  }
  const [fn, arg] = entries[0] as [string, unknown];
  const str = (v: unknown) => String(resolveIntrinsics(v, ctx, where));
  switch (fn) {
    case 'Ref': {
      const name = String(arg);
      return pseudo(name, ctx) ?? bound(name, ctx, where).ref;
    }
    case 'Fn::GetAtt': {
      const [id, attr] = Array.isArray(arg) ? (arg as string[]) : String(arg).split('.');
      const value = bound(String(id), ctx, where).attributes[String(attr)];
      if (value === undefined)
        throw new UnresolvableError(`${where}: ${id} has no attribute ${attr} in the test bed`);
      return value;
    }
    case 'Fn::Join': {
      const [separator, parts] = arg as [string, unknown[]];
      return (resolveIntrinsics(parts, ctx, where) as unknown[]).map(String).join(separator);
    }
    case 'Fn::Sub': {
      if (typeof arg === 'string') return substitute(arg, {}, ctx, where);
      const [text, vars] = arg as [string, Record<string, unknown>];
      const resolved = Object.fromEntries(Object.entries(vars).map(([k, v]) => [k, str(v)]));
      return substitute(text, resolved, ctx, where);
    }
    case 'Fn::Select': {
      const [index, list] = arg as [unknown, unknown];
      return (resolveIntrinsics(list, ctx, where) as unknown[])[Number(resolveIntrinsics(index, ctx, where))];
    }
    case 'Fn::Split': {
      const [separator, text] = arg as [string, unknown];
      return str(text).split(separator);
    }
    default:
      if (fn.startsWith('Fn::') || fn === 'Condition') {
        throw new UnresolvableError(`${where}: ${fn} is not modelled by the test bed`);
      }
      return { [fn]: resolveIntrinsics(arg, ctx, where) };
  }
}

/** A function's environment with every value resolved to a string, as Lambda hands it to the process. */
export function resolveEnvironment(
  variables: Record<string, unknown>,
  ctx: ResolveContext,
  where: string,
): Record<string, string> {
  return Object.fromEntries(
    Object.entries(variables).map(([name, value]) => [
      name,
      String(resolveIntrinsics(value, ctx, `${where} environment ${name}`)),
    ]),
  );
}

import { runSimulation } from '@cloud-copilot/iam-simulate';
import type { Authorization, AwsCall } from './awsOperations.js';
import type { PolicyDocument } from './templatePolicies.js';

/** A principal as IAM sees it: the role's ARN and its identity policies. */
export interface Principal {
  roleArn: string;
  policies: PolicyDocument[];
}

export interface Denial {
  call: AwsCall;
  need: Authorization;
  result: string;
}

export interface Evaluation {
  denials: Denial[];
  /** Actions each principal used and was allowed. */
  exercised: Map<string, Set<string>>;
}

/** The resource policy that governs `arn`: its bucket's for S3 objects, else its own. */
function resourcePolicyFor(arn: string, policies: Map<string, PolicyDocument>): PolicyDocument | undefined {
  const bucket = /^(arn:aws:s3:::[^/]+)/u.exec(arn)?.[1];
  return policies.get(bucket ?? arn);
}

/**
 * Evaluates every authorization the calls need with the IAM simulator (identity policies of the
 * caller's role, plus the resource's policy), each distinct one once.
 */
export async function evaluateCalls(
  calls: AwsCall[],
  principals: Map<string, Principal>,
  resourcePolicies: Map<string, PolicyDocument>,
  accountId: string,
): Promise<Evaluation> {
  const denials: Denial[] = [];
  const exercised = new Map<string, Set<string>>();
  const decided = new Map<string, string>();
  for (const call of calls) {
    const principal = principals.get(call.principal);
    if (!principal)
      throw new Error(`a request came from "${call.principal}", which has no role in the template`);
    for (const need of call.needs) {
      const key = JSON.stringify([call.principal, need.action, need.resource, need.context]);
      let result = decided.get(key);
      if (result === undefined) {
        const answer = await runSimulation(
          {
            identityPolicies: principal.policies.map((policy, i) => ({ name: `policy${i}`, policy })),
            serviceControlPolicies: [],
            resourceControlPolicies: [],
            resourcePolicy: resourcePolicyFor(need.resource, resourcePolicies),
            request: {
              action: need.action,
              principal: principal.roleArn,
              resource: { accountId, resource: need.resource },
              contextVariables: {
                'aws:SecureTransport': 'true',
                'aws:PrincipalArn': principal.roleArn,
                'aws:PrincipalAccount': accountId,
                ...(need.action.startsWith('s3:') ? { 's3:TlsVersion': '1.3' } : {}),
                ...need.context,
              },
            },
          },
          {},
        );
        result =
          answer.resultType === 'error'
            ? `the simulator refused the request: ${JSON.stringify(answer.errors)}`
            : answer.overallResult;
        decided.set(key, result);
      }
      if (result === 'Allowed') {
        const used = exercised.get(call.principal) ?? new Set<string>();
        used.add(need.action);
        exercised.set(call.principal, used);
      } else {
        denials.push({ call, need, result });
      }
    }
  }
  return { denials, exercised };
}

/** One line per denial: function, operation, ARN and the missing action. */
export function describeDenials(denials: Denial[]): string {
  const lines = new Set(
    denials.map(
      ({ call, need, result }) =>
        `${call.principal}: ${call.operation}${call.versioned ? ' (with VersionId)' : ''} on ${call.arn} needs ${need.action} on ${need.resource}${Object.keys(need.context).length ? ` ${JSON.stringify(need.context)}` : ''}: ${result}`,
    ),
  );
  return [...lines].join('\n');
}

/** Every action a principal's policies allow (Allow statements, as written). */
export function grantedActions(principal: Principal): Set<string> {
  const actions = new Set<string>();
  for (const policy of principal.policies) {
    for (const statement of policy.Statement) {
      if (statement.Effect !== 'Allow') continue;
      const listed = statement.Action;
      for (const action of Array.isArray(listed) ? listed : listed === undefined ? [] : [listed]) {
        actions.add(String(action));
      }
    }
  }
  return actions;
}

import type { z } from 'zod';

/**
 * A program's environment contract: every variable it reads, whether it must be set, whether it
 * arrives as a secret (ECS `secrets`, never a plain value), and the config field it fills. The
 * program parses its environment from it (`parse`) and the CDK builds the container's environment
 * from it (`containerEnvironment` in lib/infra), so a misnamed or missing variable fails at `tsc`.
 *
 * Naming: everything the project defines is `EDGE_<FIELD>`; one name means one thing in every
 * program that reads it. Standard AWS SDK variables (AWS_REGION, AWS_ENDPOINT_URL_*) are not in
 * any contract: the SDK reads them itself.
 */

export interface EnvVar<
  S extends z.ZodType = z.ZodType,
  R extends boolean = boolean,
  Secret extends boolean = boolean,
> {
  readonly name: string;
  /** Parses the variable's text; for an optional variable it also sees `undefined` (unset or ""). */
  readonly schema: S;
  readonly required: R;
  readonly secret: Secret;
  readonly doc: string;
}

const NAME = /^EDGE_[A-Z0-9_]+$/;

function envVar<S extends z.ZodType, R extends boolean, Secret extends boolean>(
  name: string,
  schema: S,
  required: R,
  secret: Secret,
  doc: string,
): EnvVar<S, R, Secret> {
  if (!NAME.test(name)) throw new Error(`environment variable names are EDGE_*, got "${name}"`);
  return { name, schema, required, secret, doc };
}

/** Builders for a contract's entries. */
export const env = {
  /** Must be set. */
  required: <S extends z.ZodType>(name: string, schema: S, doc: string) =>
    envVar(name, schema, true, false, doc),
  /** May be unset: `schema` receives `undefined` then (give it a default or `.optional()`). */
  optional: <S extends z.ZodType>(name: string, schema: S, doc: string) =>
    envVar(name, schema, false, false, doc),
  /** Delivered as a secret (Secrets Manager through ECS `secrets`); its value never appears in errors. */
  secret: <S extends z.ZodType, R extends boolean>(name: string, schema: S, required: R, doc: string) =>
    envVar(name, schema, required, true, doc),
};

export type EnvVars = Record<string, EnvVar>;

/** The parsed config: one field per variable. */
export type ConfigOf<V extends EnvVars> = { readonly [K in keyof V]: z.output<V[K]['schema']> };

export type DeepReadonly<T> = T extends (...args: never[]) => unknown
  ? T
  : T extends object
    ? { readonly [K in keyof T]: DeepReadonly<T[K]> }
    : T;

/** One row of the contract, as documentation and tests read it. */
export interface EnvVarDescription {
  readonly name: string;
  readonly field: string;
  readonly required: boolean;
  readonly secret: boolean;
  readonly doc: string;
}

export class EnvConfigError extends Error {
  override name = 'EnvConfigError';
  constructor(
    readonly program: string,
    /** One line per problem, each starting with the variable's name. */
    readonly problems: readonly string[],
  ) {
    super(`invalid environment for ${program}:\n  ${problems.join('\n  ')}`);
  }
}

/** Cross-variable rules; `fail(field, why)` reports under the variable's name. */
export type EnvCheck<V extends EnvVars> = (
  config: ConfigOf<V>,
  fail: (field: keyof V & string, why: string) => void,
) => void;

export interface EnvContract<V extends EnvVars> {
  /** The program, as its container names it (`node dist/bin/<program>.js`). */
  readonly program: string;
  readonly vars: V;
  /** Parses `env` once: every problem at once, each naming its variable; the result is deeply frozen. */
  parse(env: NodeJS.ProcessEnv): DeepReadonly<ConfigOf<V>>;
  describe(): readonly EnvVarDescription[];
  /** The names of the contract's variables. */
  readonly names: ReadonlySet<string>;
  /** EDGE_* variables set in `env` that this program does not read (likely misnamed). */
  unread(env: NodeJS.ProcessEnv): string[];
}

export function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}

function shown(raw: string): string {
  return raw.length > 80 ? `${JSON.stringify(raw.slice(0, 77))}...` : JSON.stringify(raw);
}

export function defineEnvContract<V extends EnvVars>(
  program: string,
  vars: V,
  check?: EnvCheck<V>,
): EnvContract<V> {
  const names = new Set<string>();
  for (const v of Object.values(vars)) {
    if (names.has(v.name)) throw new Error(`${program}: ${v.name} appears twice in its contract`);
    names.add(v.name);
  }
  return {
    program,
    vars,
    names,
    parse(env) {
      const problems: string[] = [];
      const out: Record<string, unknown> = {};
      for (const [field, v] of Object.entries(vars)) {
        const raw = env[v.name];
        const text = raw === undefined || raw === '' ? undefined : raw;
        if (text === undefined && v.required) {
          problems.push(`${v.name} is required but not set`);
          continue;
        }
        const result = v.schema.safeParse(text);
        if (result.success) {
          out[field] = result.data;
          continue;
        }
        const why = result.error.issues
          .map((i) => (i.path.length ? `${i.path.join('.')}: ${i.message}` : i.message))
          .join('; ');
        const got = text === undefined ? 'unset' : v.secret ? 'a secret value' : shown(text);
        problems.push(`${v.name}: ${why} (got ${got})`);
      }
      if (!problems.length && check) {
        check(out as ConfigOf<V>, (field, why) => problems.push(`${vars[field]?.name ?? field} ${why}`));
      }
      if (problems.length) throw new EnvConfigError(program, problems);
      return deepFreeze(out) as DeepReadonly<ConfigOf<V>>;
    },
    describe() {
      return Object.entries(vars).map(([field, v]) => ({
        name: v.name,
        field,
        required: v.required,
        secret: v.secret,
        doc: v.doc,
      }));
    },
    unread(env) {
      return Object.keys(env).filter((k) => k.startsWith('EDGE_') && !names.has(k));
    },
  };
}

type RequiredFields<V extends EnvVars> = {
  [K in keyof V]: V[K] extends EnvVar<z.ZodType, true, boolean> ? K : never;
}[keyof V];
/** Plain values: what the variable's schema accepts as text (enums stay checked), or a number or boolean. */
type ValueOf<E, SecretRef> =
  E extends EnvVar<infer S, boolean, infer Secret>
    ? Secret extends true
      ? SecretRef
      : Exclude<z.input<S>, undefined> | number | boolean
    : never;

/**
 * What a deployment passes to build a container's environment: one key per config field,
 * required fields required, secrets as references (`SecretRef`, e.g. `ecs.Secret`), the rest as
 * plain values. An unknown key or a missing required one is a type error.
 */
export type EnvValues<V extends EnvVars, SecretRef> = {
  readonly [K in RequiredFields<V>]: ValueOf<V[K], SecretRef>;
} & {
  readonly [K in Exclude<keyof V, RequiredFields<V>>]?: ValueOf<V[K], SecretRef>;
};

/** Splits `values` into plain variables and secrets under the contract's names. */
export function environmentFromContract<V extends EnvVars, SecretRef>(
  contract: EnvContract<V>,
  values: NoInfer<EnvValues<V, SecretRef>>,
): { environment: Record<string, string>; secrets: Record<string, SecretRef> } {
  const environment: Record<string, string> = {};
  const secrets: Record<string, SecretRef> = {};
  for (const [field, value] of Object.entries(values as Record<string, unknown>)) {
    const v = contract.vars[field];
    if (!v) throw new Error(`${contract.program} has no config field "${field}" in its environment contract`);
    if (value === undefined) continue;
    if (v.secret) secrets[v.name] = value as SecretRef;
    else environment[v.name] = String(value);
  }
  for (const [field, v] of Object.entries(contract.vars)) {
    if (v.required && (values as Record<string, unknown>)[field] === undefined) {
      throw new Error(`${contract.program} requires ${v.name} (config field "${field}")`);
    }
  }
  return { environment, secrets };
}

/** A child process's environment from the contract (local runs): secrets are plain text there. */
export function processEnvironment<V extends EnvVars>(
  contract: EnvContract<V>,
  values: NoInfer<EnvValues<V, string>>,
): Record<string, string> {
  const { environment, secrets } = environmentFromContract<V, string>(contract, values);
  return { ...environment, ...secrets };
}

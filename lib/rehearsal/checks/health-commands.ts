import { podman } from '../podman.ts';
import type { ContainerDefinition } from '../task-definition.ts';

/** The programs a health-check command runs: argv[0] for CMD, each pipeline stage's first word for CMD-SHELL. */
export function healthPrograms(command: readonly string[]): string[] {
  const [kind, ...rest] = command;
  if (kind === 'CMD') return rest.length > 0 ? [rest[0] as string] : [];
  const script = rest.join(' ');
  const words = script
    .split(/\|\||&&|[|;]/)
    .map((part) => part.trim().split(/\s+/)[0] ?? '')
    .filter((w) => w !== '' && !/^[A-Z_]+=/.test(w));
  return ['/bin/sh', ...new Set(words)];
}

/**
 * Issue 8 item 7: every container's health-check command exists in its image. Looked up with the
 * image's own PATH and user, as `podman exec` (and ECS) would run it; no network, no task.
 */
export async function missingHealthPrograms(
  containers: readonly { def: ContainerDefinition; image: string }[],
): Promise<{ container: string; missing: string[]; error?: string }[]> {
  const results = await Promise.all(
    containers
      .filter((c) => c.def.healthCheck)
      .map(async (c) => {
        const programs = healthPrograms(c.def.healthCheck?.command ?? []);
        const script = programs.map((p) => `command -v '${p}' >/dev/null || echo '${p}'`).join('; ');
        const r = await podman(
          [
            'run',
            '--rm',
            '--network',
            'none',
            '--entrypoint',
            '/bin/sh',
            ...(c.def.user ? ['--user', c.def.user] : []),
            c.image,
            '-c',
            script,
          ],
          { timeoutMs: 60_000 },
        );
        if (r.code !== 0) {
          return {
            container: c.def.name,
            missing: programs,
            error: `cannot look inside ${c.image}: ${r.stderr.trim()}`,
          };
        }
        return { container: c.def.name, missing: r.stdout.split('\n').filter((l) => l.trim() !== '') };
      }),
  );
  return results.filter((r) => r.missing.length > 0 || r.error);
}

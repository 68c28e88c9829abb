import { describe, expect, it } from 'vitest';
import { parseCommandLine } from '../../lib/control/cli/commands.ts';
import { loadCliConfig } from '../../lib/control/cli/config.ts';
import { ValidationError } from '../../lib/control/errors.ts';
import * as valid from '../../lib/control/validation.ts';

function message(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ValidationError);
    return (err as Error).message;
  }
  throw new Error('expected a ValidationError');
}

describe('input validation', () => {
  it('tenant ids', () => {
    expect(valid.tenantId('acme-2')).toBe('acme-2');
    expect(message(() => valid.tenantId('Acme'))).toBe(
      'invalid tenant id "Acme": tenant id: lowercase letters, digits and dashes, at most 63',
    );
  });

  it('domains: lowercased, trailing dot dropped, then checked', () => {
    expect(valid.hostname('WWW.Acme-Shop.com.')).toBe('www.acme-shop.com');
    expect(message(() => valid.hostname('localhost'))).toBe(
      'invalid domain "localhost": a lowercase DNS name with at least two labels',
    );
    expect(message(() => valid.hostname('a_b.com'))).toBe(
      'invalid domain "a_b.com": a lowercase DNS name with at least two labels',
    );
  });

  it('custom domains: a public suffix (ICANN or private section) is refused', () => {
    expect(valid.customDomain('Shop.Example.co.uk')).toBe('shop.example.co.uk');
    expect(valid.customDomain('acme.github.io')).toBe('acme.github.io');
    for (const suffix of ['co.uk', 'github.io', 's3.amazonaws.com']) {
      expect(message(() => valid.customDomain(suffix))).toBe(
        `invalid domain "${suffix}": it is a public suffix; add a name registered under it`,
      );
    }
  });

  it('origins name the field that is wrong', () => {
    expect(valid.origin({ type: 's3-website', endpoint: 'b.s3-website.eu-west-1.amazonaws.com' })).toEqual({
      type: 's3-website',
      endpoint: 'b.s3-website.eu-west-1.amazonaws.com',
    });
    expect(message(() => valid.origin({ type: 's3-website', endpoint: 'not a host' }))).toBe(
      'invalid origin endpoint "not a host": a lowercase DNS name with at least two labels',
    );
    expect(message(() => valid.origin({ type: 'http', url: 'ftp://files.example' }))).toBe(
      'invalid origin url "ftp://files.example": http(s)://host[:port][/path]',
    );
  });

  it('purges use the event schema and refuse dot segments', () => {
    expect(valid.purgeRequest('acme', { scope: 'prefix', prefix: '/blog/' })).toEqual({
      tenant: 'acme',
      scope: 'prefix',
      prefix: '/blog/',
    });
    expect(valid.purgeRequest('acme', { scope: 'host', host: 'WWW.Acme.com' })).toEqual({
      tenant: 'acme',
      scope: 'host',
      host: 'www.acme.com',
    });
    expect(message(() => valid.purgeRequest('acme', { scope: 'prefix', prefix: 'blog/' }))).toBe(
      'invalid purge prefix "blog/": Invalid string: must start with "/"',
    );
    expect(message(() => valid.purgeRequest('acme', { scope: 'prefix', prefix: '/a/../b/' }))).toBe(
      'invalid prefix "/a/../b/": contains a dot segment (. or ..)',
    );
    expect(message(() => valid.purgeRequest('acme', { scope: 'url', url: 'www.acme.com/x' }))).toBe(
      'invalid purge url "www.acme.com/x": an absolute http(s) URL',
    );
    expect(message(() => valid.purgeRequest('acme', { scope: 'url', url: 'https://a.com/./x' }))).toBe(
      'invalid url "https://a.com/./x": its path contains a dot segment (. or ..)',
    );
  });
});

describe('command line', () => {
  const cases: [string[], string][] = [
    [[], 'a command is required (edge --help lists them)'],
    [['deploy'], "unknown command 'deploy'"],
    [['tenant'], '"tenant" needs a subcommand: add, remove, list or show'],
    [['tenant', 'rename', 'acme'], "unknown command 'rename' (Did you mean remove?)"],
    [['tenant', 'add'], "missing required argument 'id'"],
    [
      ['tenant', 'add', 'acme'],
      '"tenant add" needs an origin: --origin-s3 <endpoint> or --origin-http <url>',
    ],
    [
      ['tenant', 'add', 'acme', '--origin-s3', 'b.example.com', '--origin-http', 'http://o.example'],
      'give one of --origin-s3 and --origin-http, not both',
    ],
    [
      ['tenant', 'add', 'acme', '--origin-http', 'http://o.example', '--prefix', 'x/'],
      '--prefix goes with --origin-s3',
    ],
    [
      ['tenant', 'show', 'acme', 'extra'],
      "too many arguments for 'show'. Expected 1 argument but got 2: acme, extra.",
    ],
    [['tenant', 'list', '--host', 'a.com'], "unknown option '--host'"],
    [['domain', 'add', 'www.acme.com'], "required option '--tenant <id>' not specified"],
    [['domain', 'add', 'www.acme.com', '--tenant'], "option '--tenant <id>' argument missing"],
    [['domain', 'add', 'www.acme.com', '--tenant', 'acme', '--force'], "unknown option '--force'"],
    [
      ['domain', 'add', 'www.acme.com', '--tenant', 'acme', '--wait', '--timeout', '0'],
      '--timeout takes a whole number of seconds (got "0")',
    ],
    [['purge'], "required option '--tenant <id>' not specified"],
    [
      ['purge', '--tenant', 'acme', '--host', 'a.com', '--prefix', '/x/'],
      'give at most one of --host, --prefix and --url (got --host, --prefix)',
    ],
    [
      ['purge', '--tenant', 'acme', 'acme'],
      "too many arguments for 'purge'. Expected 0 arguments but got 1: acme.",
    ],
    [
      ['domain', 'show', 'Not_A_Domain'],
      'invalid domain "not_a_domain": a lowercase DNS name with at least two labels',
    ],
    [
      ['tenant', 'add', 'acme', '--origin-http', 'http://o.example', '--hsts-preload'],
      '--hsts-include-subdomains and --hsts-preload go with --hsts-max-age <seconds>',
    ],
    [
      ['tenant', 'add', 'acme', '--origin-http', 'http://o.example', '--hsts-max-age', '1y'],
      'invalid --hsts-max-age "1y": a number of seconds',
    ],
    [
      ['tenant', 'add', 'acme', '--origin-http', 'http://o.example', '--hsts-max-age', '0'],
      'invalid hsts maxAgeSeconds 0: Too small: expected number to be >=1',
    ],
    [
      [
        'tenant',
        'add',
        'a',
        '--origin-http',
        'http://o.example',
        '--hsts-max-age',
        '86400',
        '--hsts-preload',
      ],
      'invalid hsts {"maxAgeSeconds":86400,"includeSubDomains":false,"preload":true}: preload needs includeSubDomains and maxAgeSeconds >= 31536000',
    ],
  ];
  for (const [argv, expected] of cases) {
    it(`edge ${argv.join(' ') || '(nothing)'}`, () => {
      expect(message(() => parseCommandLine(argv))).toBe(expected);
    });
  }

  it('parses commands with their options and the settings flags', () => {
    const parsed = parseCommandLine([
      'purge',
      '--tenant',
      'acme',
      '--url',
      'https://www.acme.com/a?b',
      '--json',
      '--table',
      'edge',
      '--edge-address',
      '203.0.113.1',
      '--edge-address',
      '2001:db8::1',
    ]);
    expect(parsed.command).toEqual({
      name: 'purge',
      tenant: 'acme',
      target: { scope: 'url', url: 'https://www.acme.com/a?b' },
    });
    expect(parsed.json).toBe(true);
    expect(parsed.settings.table).toBe('edge');
    expect(parsed.settings['edge-address']).toEqual(['203.0.113.1', '2001:db8::1']);
    expect(parseCommandLine(['--json', '--table', 't', 'tenant', 'list'])).toEqual({
      command: { name: 'tenant list' },
      json: true,
      settings: { table: 't' },
    });
    expect(parseCommandLine(['domain', 'add', 'x.example.com', '--tenant', 'a', '--wait']).command).toEqual({
      name: 'domain add',
      domain: 'x.example.com',
      tenant: 'a',
      skipDnsCheck: false,
      preverified: false,
      wait: { timeoutSeconds: 900, intervalSeconds: 5 },
    });
    expect(
      parseCommandLine([
        'tenant',
        'add',
        'a',
        '--origin-http',
        'http://o.example',
        '--hsts-max-age',
        '31536000',
        '--hsts-include-subdomains',
        '--hsts-preload',
      ]).command,
    ).toEqual({
      name: 'tenant add',
      id: 'a',
      origin: { type: 'http', url: 'http://o.example' },
      hsts: { maxAgeSeconds: 31536000, includeSubDomains: true, preload: true },
    });
    expect(parseCommandLine(['tenant', 'add', 'a', '--origin-http', 'http://o.example']).command).toEqual({
      name: 'tenant add',
      id: 'a',
      origin: { type: 'http', url: 'http://o.example' },
    });
    const help = parseCommandLine(['domain', 'add', 'x.example.com', '--help']).command;
    expect(help.name).toBe('help');
    expect(help.name === 'help' && help.text).toMatch(/^Usage: edge domain add \[options\] <domain>\n/);
  });
});

describe('configuration', () => {
  it('flags win over the environment; lists split on commas', () => {
    const c = loadCliConfig(
      { table: 'from-flag', 'edge-cname': 'edge.platform.example' },
      {
        EDGE_TABLE_NAME: 'from-env',
        EDGE_BUS: 'redis',
        EDGE_BUS_REDIS_URL: 'redis://10.0.0.5:6380',
        EDGE_DNS_ADDRESSES: '203.0.113.1, 2001:db8::1',
        AWS_REGION: 'eu-west-1',
      },
    );
    expect(c).toMatchObject({
      tableName: 'from-flag',
      bus: 'redis',
      redisUrl: 'redis://10.0.0.5:6380',
      stream: 'edge:events',
      region: 'eu-west-1',
      edgeCname: 'edge.platform.example',
      edgeAddresses: ['203.0.113.1', '2001:db8::1'],
    });
    expect(Object.isFrozen(c)).toBe(true);
  });

  it('names every missing or invalid setting with its flag and variable', () => {
    expect(message(() => loadCliConfig({}, {}))).toBe(
      'invalid configuration: --table / EDGE_TABLE_NAME: required; --bus / EDGE_BUS: required, aws or redis',
    );
    expect(message(() => loadCliConfig({ table: 'edge', bus: 'aws' }, {}))).toBe(
      'invalid configuration: --sns-topic-arn / EDGE_SNS_TOPIC_ARN: required with bus aws',
    );
    expect(
      message(() =>
        loadCliConfig({ table: 'edge', bus: 'redis', 'edge-address': ['203.0.113.1', 'edge'] }, {}),
      ),
    ).toBe('invalid configuration: --edge-address / EDGE_DNS_ADDRESSES[1]: an IPv4 or IPv6 address');
    expect(message(() => loadCliConfig({ table: 'edge', bus: 'redis', 'key-source': 'kms' }, {}))).toBe(
      'invalid configuration: --kms-key-id / EDGE_KMS_KEY_ID: required with key source kms',
    );
    expect(message(() => loadCliConfig({ table: 'edge', bus: 'redis', 'redis-url': 'http://x:1' }, {}))).toBe(
      'invalid configuration: --redis-url / EDGE_BUS_REDIS_URL: a redis:// or rediss:// URL',
    );
  });
});

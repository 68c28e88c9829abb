import { describe, expect, it } from 'vitest';
import { DnsCheck } from '../../lib/control/dns/check.ts';
import { DnsCheckError, ValidationError } from '../../lib/control/errors.ts';
import { FakeResolver } from './fake-resolver.ts';

const EDGE = { cname: 'edge.platform.example', addresses: ['203.0.113.10', '2001:db8::10'] };

const zone = new FakeResolver({
  'edge.platform.example': { a: ['203.0.113.10'], aaaa: ['2001:db8::10'] },
  'acme.platform.example': { cname: 'edge.platform.example.' },
  'www.acme-shop.com': { cname: 'EDGE.platform.example.' },
  'shop.chained.com': { cname: 'cdn.chained.com' },
  'cdn.chained.com': { cname: 'acme.platform.example' },
  'acme-shop.com': { a: ['203.0.113.10'], aaaa: ['2001:0db8:0:0::10'] },
  'mixed.com': { a: ['203.0.113.10', '198.51.100.7'] },
  'elsewhere.com': { cname: 'shop.other-cdn.net' },
  'shop.other-cdn.net': { a: ['198.51.100.7'] },
  'empty.com': {},
  'broken.com': { error: 'ESERVFAIL' },
});

describe('DNS check', () => {
  const check = new DnsCheck(zone, EDGE);

  it('passes a CNAME to the edge name (case and trailing dot ignored)', async () => {
    await expect(check.check('www.acme-shop.com')).resolves.toEqual({
      domain: 'www.acme-shop.com',
      via: 'cname',
      chain: ['edge.platform.example'],
      addresses: [],
    });
  });

  it('follows a CNAME chain that ends at the edge name', async () => {
    const r = await check.check('shop.chained.com');
    expect(r.via).toBe('cname');
    expect(r.chain).toEqual(['cdn.chained.com', 'acme.platform.example', 'edge.platform.example']);
  });

  it('passes A/AAAA records that are all edge addresses (IPv6 compared by value)', async () => {
    await expect(check.check('acme-shop.com')).resolves.toEqual({
      domain: 'acme-shop.com',
      via: 'address',
      chain: [],
      addresses: ['203.0.113.10', '2001:0db8:0:0::10'],
    });
  });

  it('refuses a domain pointing elsewhere, saying where it points and what was expected', async () => {
    await expect(check.check('elsewhere.com')).rejects.toThrow(
      new DnsCheckError(
        'elsewhere.com does not point at the edge: it resolves to CNAME shop.other-cdn.net, A 198.51.100.7; ' +
          'expected a CNAME to edge.platform.example or A/AAAA records among 203.0.113.10, 2001:db8::10',
      ),
    );
  });

  it('refuses A records of which only some are the edge', async () => {
    await expect(check.check('mixed.com')).rejects.toThrow(
      'mixed.com does not point at the edge: it resolves to A 203.0.113.10, A 198.51.100.7;',
    );
  });

  it('refuses a name with no records', async () => {
    await expect(check.check('empty.com')).rejects.toThrow(
      'empty.com does not point at the edge: it resolves to no CNAME, A or AAAA record;',
    );
  });

  it('reports NXDOMAIN', async () => {
    const err = await check.check('missing.example').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DnsCheckError);
    expect((err as Error).message).toBe('missing.example does not exist in DNS (NXDOMAIN)');
  });

  it('reports a failed lookup with its code', async () => {
    await expect(check.check('broken.com')).rejects.toThrow('DNS lookup of broken.com failed: ESERVFAIL');
  });

  it('with only a CNAME target configured, addresses do not pass', async () => {
    const cnameOnly = new DnsCheck(zone, { cname: 'edge.platform.example' });
    await expect(cnameOnly.check('acme-shop.com')).rejects.toThrow(
      'acme-shop.com does not point at the edge: it resolves to A 203.0.113.10, AAAA 2001:0db8:0:0::10; ' +
        'expected a CNAME to edge.platform.example',
    );
  });

  it('refuses a configuration without targets or with a bad address', () => {
    expect(() => new DnsCheck(zone, {})).toThrow(
      new ValidationError('the DNS check needs the edge CNAME target or at least one edge address'),
    );
    expect(() => new DnsCheck(zone, { addresses: ['10.0.0.300'] })).toThrow(
      'invalid edge address "10.0.0.300": not an IPv4 or IPv6 address',
    );
  });
});

import { describe, expect, it } from 'vitest';
import { publicSuffixOf, registeredDomain } from '../../lib/core/domain-names.ts';

describe('registered domains from the public suffix list', () => {
  it('counts a name against its eTLD+1, wildcards included', () => {
    expect(registeredDomain('www.shop.example.co.uk')).toBe('example.co.uk');
    expect(registeredDomain('*.shop.example.com')).toBe('example.com');
    expect(registeredDomain('a.b.example.com.au')).toBe('example.com.au');
    // Private-section suffixes are separate registered domains for Let's Encrypt too.
    expect(registeredDomain('acme.github.io')).toBe('acme.github.io');
    expect(registeredDomain('www.acme.github.io')).toBe('acme.github.io');
  });

  it('names the public suffixes themselves', () => {
    expect(publicSuffixOf('co.uk')).toBe('co.uk');
    expect(publicSuffixOf('github.io')).toBe('github.io');
    expect(publicSuffixOf('example.co.uk')).toBeUndefined();
    expect(publicSuffixOf('shop.example.com')).toBeUndefined();
  });
});

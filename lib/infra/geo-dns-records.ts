import { Duration } from 'aws-cdk-lib';
import type * as elbv2 from 'aws-cdk-lib/aws-elasticloadbalancingv2';
import * as route53 from 'aws-cdk-lib/aws-route53';
import * as targets from 'aws-cdk-lib/aws-route53-targets';
import { Construct } from 'constructs';

export interface GeoDnsRecordsProps {
  readonly zone: route53.IHostedZone;
  /** Names answered by geolocation, e.g. the edge hostname and the platform domain. */
  readonly recordNames: readonly string[];
  readonly loadBalancer: elbv2.INetworkLoadBalancer;
  /** This region's name, used in set identifiers and as the latency record's region. */
  readonly region: string;
  /** Continent codes routed here. Default: none. */
  readonly continents?: readonly route53.Continent[];
  /** ISO 3166-1 alpha-2 country codes routed here. Default: none. */
  readonly countries?: readonly string[];
  /** This region answers everyone no other record matches. Default: false. */
  readonly isDefault?: boolean;
  /** Add AAAA records next to the A records (the NLB must be dual-stack). Default: false. */
  readonly ipv6?: boolean;
  /** Shared by every region: one latency record per region, each with its health check. */
  readonly anyRegionName: string;
  /** This region's failover pair: its NLB while healthy, else `anyRegionName`. */
  readonly regionName: string;
  /** Resolves to this region's NLB only; the health check requests the canary there. */
  readonly healthCheckName: string;
  /** Body the canary answers when the region serves correctly (lua/edge/canary.lua). */
  readonly healthCheckSearchString: string;
}

/**
 * One region's share of the DNS answer, and its failover.
 *
 * The chain for a user whose location maps to region R (and for everyone else, through the
 * default record, which the default region writes):
 *
 *   <edge hostname> (geolocation: location → R)
 *     → R.<edge hostname> (failover pair)
 *         PRIMARY:   R's NLB, while R's health check passes
 *         SECONDARY: any.<edge hostname>
 *                      (latency: one record per region, each with its own health check)
 *                      → the nearest healthy region
 *
 * So if any region fails, its users get the nearest healthy one; if every health check fails,
 * Route53 answers as if all were healthy (latency records) rather than not at all. The health
 * check requests `https://edge-health-R.<platform domain>/` with SNI; that name is an alias of
 * R's NLB alone (never geolocated), and the edge answers the fixed canary body only when it can
 * route and holds a real certificate for the name, so a region serving 404s or fallback
 * certificates leaves DNS. Route53 does not validate the certificate; the canary does.
 *
 * Every record lives in this region's stack (the targets of its aliases exist in the same
 * stack or, for `any`, are added by each region for itself), so no value crosses regions.
 */
export class GeoDnsRecords extends Construct {
  readonly healthCheck: route53.HealthCheck;

  constructor(scope: Construct, id: string, props: GeoDnsRecordsProps) {
    super(scope, id);
    const locations: [string, route53.GeoLocation][] = [
      ...(props.continents ?? []).map((c): [string, route53.GeoLocation] => [
        `continent-${c}`,
        route53.GeoLocation.continent(c),
      ]),
      ...(props.countries ?? []).map((c): [string, route53.GeoLocation] => [
        `country-${c}`,
        route53.GeoLocation.country(c),
      ]),
      ...(props.isDefault
        ? [['default', route53.GeoLocation.default()] as [string, route53.GeoLocation]]
        : []),
    ];
    if (locations.length === 0) {
      throw new Error(
        `region ${props.region} has no geolocation mapped to it; map a continent or country to it`,
      );
    }
    const nlb = route53.RecordTarget.fromAlias(
      new targets.LoadBalancerTarget(props.loadBalancer, { evaluateTargetHealth: true }),
    );
    const families = props.ipv6 ? (['A', 'AAAA'] as const) : (['A'] as const);
    const record = (id: string, family: 'A' | 'AAAA', options: route53.ARecordProps) =>
      family === 'A' ? new route53.ARecord(this, id, options) : new route53.AaaaRecord(this, id, options);

    // The canary's name: this region's NLB, plain alias, nothing else.
    const canary = families.map((family) =>
      record(`Canary${family}`, family, { zone: props.zone, recordName: props.healthCheckName, target: nlb }),
    );
    this.healthCheck = new route53.HealthCheck(this, 'HealthCheck', {
      type: route53.HealthCheckType.HTTPS_STR_MATCH,
      fqdn: props.healthCheckName,
      port: 443,
      resourcePath: '/',
      enableSNI: true,
      searchString: props.healthCheckSearchString,
      requestInterval: Duration.seconds(30),
      failureThreshold: 3,
    });
    for (const c of canary) this.healthCheck.node.addDependency(c);

    for (const family of families) {
      const any = record(`Any${family}`, family, {
        zone: props.zone,
        recordName: props.anyRegionName,
        target: nlb,
        region: props.region,
        setIdentifier: props.region,
        healthCheck: this.healthCheck,
      });
      const primary = record(`Primary${family}`, family, {
        zone: props.zone,
        recordName: props.regionName,
        target: nlb,
        failover: route53.Failover.PRIMARY,
        setIdentifier: `${props.region}-primary`,
        healthCheck: this.healthCheck,
      });
      const secondary = record(`Secondary${family}`, family, {
        zone: props.zone,
        recordName: props.regionName,
        target: sameZoneAlias(props.zone, any),
        failover: route53.Failover.SECONDARY,
        setIdentifier: `${props.region}-any`,
      });
      secondary.node.addDependency(any);
      // Geolocation → this region's failover pair; the pair always has a healthy answer.
      const pair = sameZoneAlias(props.zone, primary);
      props.recordNames.forEach((recordName, n) => {
        for (const [location, geoLocation] of locations) {
          const geo = record(`${family === 'A' ? 'A' : 'Aaaa'}${n}-${location}`, family, {
            zone: props.zone,
            recordName,
            target: pair,
            geoLocation,
            setIdentifier: `${props.region}-${location}`,
          });
          geo.node.addDependency(primary, secondary);
        }
      });
    }
  }
}

/** An alias to another record of the zone that follows that record's health (a failover chain). */
function sameZoneAlias(zone: route53.IHostedZone, record: route53.IRecordSet): route53.RecordTarget {
  return route53.RecordTarget.fromAlias({
    bind: () => ({ hostedZoneId: zone.hostedZoneId, dnsName: record.domainName, evaluateTargetHealth: true }),
  });
}

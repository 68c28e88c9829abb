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
  /** This region's name, used in set identifiers. */
  readonly region: string;
  /** Continent codes routed here. Default: none. */
  readonly continents?: readonly route53.Continent[];
  /** ISO 3166-1 alpha-2 country codes routed here. Default: none. */
  readonly countries?: readonly string[];
  /** This region answers everyone no other record matches. Default: false. */
  readonly isDefault?: boolean;
  /** Add AAAA records next to the A records (the NLB must be dual-stack). Default: false. */
  readonly ipv6?: boolean;
}

/**
 * One region's share of the geolocation answer: alias records to its NLB for every location
 * mapped to it, guarded by a Route53 health check so that an unhealthy region drops out and its
 * users fall through to the continent or default record. Each regional stack writes its own
 * records into the shared zone, so no value ever crosses regions.
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

    // TCP through the NLB to the tasks on 443: healthy only when a task completes the handshake.
    this.healthCheck = new route53.HealthCheck(this, 'HealthCheck', {
      type: route53.HealthCheckType.TCP,
      fqdn: props.loadBalancer.loadBalancerDnsName,
      port: 443,
      requestInterval: Duration.seconds(30),
      failureThreshold: 3,
    });

    const target = route53.RecordTarget.fromAlias(
      new targets.LoadBalancerTarget(props.loadBalancer, { evaluateTargetHealth: true }),
    );
    props.recordNames.forEach((recordName, n) => {
      for (const [location, geoLocation] of locations) {
        const common = {
          zone: props.zone,
          recordName,
          target,
          geoLocation,
          setIdentifier: `${props.region}-${location}`,
          healthCheck: this.healthCheck,
        };
        new route53.ARecord(this, `A${n}-${location}`, common);
        if (props.ipv6) new route53.AaaaRecord(this, `Aaaa${n}-${location}`, common);
      }
    });
  }
}

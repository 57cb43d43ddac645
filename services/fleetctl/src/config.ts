/**
 * fleetctl's environment: the one module that reads `process.env` (main.ts passes it in).
 * The same names and defaults as the workers (services/*\/src/config.ts), so `fleetctl` on a
 * worker's host talks to the Redis and Kafka the workers use.
 */
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigError, EnvReader } from '../../../shared/src/config/env.js';
import { readConnectionSecurity, type ConnectionSecurity } from '../../../shared/src/config/security.js';
import { createTopicCatalog } from '../../../shared/src/contracts/topics.js';

export { ConfigError };

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');

/** The BullMQ queue every lifecycle job goes through. */
export const MODELS_QUEUE = 'fleet-models';

export interface FleetctlConfig {
  /** REDIS_URL. @defaultValue 'redis://127.0.0.1:6380' (the workers' default) */
  redisUrl: string;
  /** KAFKA_BROKERS. @defaultValue ['127.0.0.1:9092'] */
  kafkaBrokers: string[];
  security: ConnectionSecurity;
  /** MODEL_REGISTRY: the folder holding `<model>/<version>/`. @defaultValue `<repo>/models` */
  registry: string;
  /** FLEETCTL_QUEUE_PREFIX: BullMQ key prefix of the `fleet-models` queue. @defaultValue 'bull' (BullMQ's own) */
  queuePrefix: string;
  /** ACTIONS_QUEUE_PREFIX: the actions worker's queue prefix, for `jobs status`. @defaultValue 'actions' */
  actionsQueuePrefix: string;
  /** ANOMALY_SCORES_TOPIC, as the sensor worker reads it. @defaultValue maintenance.anomaly-scores.v1 */
  scoresTopic: string;
  /** ALERTS_TOPIC: alert periods are left out of recalibration. @defaultValue maintenance.alerts.v1 */
  alertsTopic: string;
  /** SHARED_DATA: the shared data folder the trainer's evaluation reads. @defaultValue `<repo>/../shared/data` */
  sharedData: string;
  /** Who writes releases and deployments (FLEETCTL_USER, USER). */
  by: string;
}

export function loadConfig(env: Readonly<Record<string, string | undefined>>): FleetctlConfig {
  const r = new EnvReader(env);
  const redisUrl = r.url('REDIS_URL', 'redis://127.0.0.1:6380', ['redis', 'rediss']);
  const prefix = (name: string, fallback: string) => r.string(name, fallback, /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/, '1-64 characters of [A-Za-z0-9_-]');
  const config: FleetctlConfig = {
    redisUrl,
    kafkaBrokers: r.brokers('KAFKA_BROKERS', '127.0.0.1:9092'),
    security: readConnectionSecurity(r, redisUrl),
    registry: resolve(REPO_ROOT, r.string('MODEL_REGISTRY', resolve(REPO_ROOT, 'models'))),
    queuePrefix: prefix('FLEETCTL_QUEUE_PREFIX', 'bull'),
    actionsQueuePrefix: prefix('ACTIONS_QUEUE_PREFIX', 'actions'),
    scoresTopic: r.string('ANOMALY_SCORES_TOPIC', createTopicCatalog().anomalyScores.name, /^[A-Za-z0-9._-]{1,249}$/, 'a Kafka topic name'),
    alertsTopic: r.string('ALERTS_TOPIC', createTopicCatalog().alerts.name, /^[A-Za-z0-9._-]{1,249}$/, 'a Kafka topic name'),
    sharedData: resolve(REPO_ROOT, r.string('SHARED_DATA', resolve(REPO_ROOT, '../shared/data'))),
    by: `fleetctl:${r.optionalString('FLEETCTL_USER') ?? r.optionalString('USER') ?? 'unknown'}`,
  };
  r.done();
  return config;
}

import type { KafkaMessage } from 'kafkajs';
import { alertEventId, decodeAlertEvent, type AlertEvent } from '../../../shared/src/contracts/anomaly.js';
import type { ActionEventType } from '../../../shared/src/contracts/action.js';
import { decodeDefectEvent, type DefectEvent } from '../../../shared/src/contracts/inspection.js';
import type { ContractViolation } from '../../../shared/src/contracts/errors.js';

/** An event read from Kafka, ready to become one job per matching route. */
export interface ActionEvent {
  type: ActionEventType;
  /** A defect's frameId; an alert's `<alertId>:<state>`. */
  eventId: string;
  sourceTopic: string;
  /** `processing.producedAt` of the event: where the delivery latency starts. */
  producedAt: number;
  event: DefectEvent | AlertEvent;
}

/** Decodes a defect or alert record; a violation for a record that breaks its contract. */
export function decodeActionEvent(type: ActionEventType, topic: string, message: Pick<KafkaMessage, 'key' | 'value' | 'headers'>): ActionEvent | ContractViolation {
  if (type === 'defect') {
    const d = decodeDefectEvent(message);
    if (!d.ok) return d.error;
    return { type, eventId: d.value.frameId, sourceTopic: topic, producedAt: d.value.processing.producedAt, event: d.value };
  }
  const a = decodeAlertEvent(message);
  if (!a.ok) return a.error;
  return { type, eventId: alertEventId(a.value), sourceTopic: topic, producedAt: a.value.processing.producedAt, event: a.value };
}

/**
 * The BullMQ job id of an event on a route: `<route>/<eventId>`, with `:` written `%3A`. BullMQ
 * refuses custom ids holding one `:` (it reserves `a:b:c` for repeatable jobs; job.js
 * "Custom Id cannot contain :"), and event ids may hold `:` (alert ids always do). The mapping is
 * one-to-one: ids never hold `%`, route names never hold `/`.
 */
export function jobIdOf(route: string, eventId: string): string {
  return `${route}/${eventId.replaceAll(':', '%3A')}`;
}

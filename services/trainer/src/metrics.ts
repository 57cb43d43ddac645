/** Classification figures from predictions and true labels. */

export interface ClassificationReport {
  count: number;
  correct: number;
  accuracy: number;
  labels: string[];
  /** Items per true class. */
  support: Record<string, number>;
  /** Per true class: correct / support (null for a class with no items). */
  recall: Record<string, number | null>;
  /** Per predicted class: correct / predicted (null when never predicted). */
  precision: Record<string, number | null>;
  /** Rows: true class, columns: predicted class, in `labels` order. */
  confusion: number[][];
}

const round = (v: number): number => Math.round(v * 1e5) / 1e5;

export function classificationReport(labels: readonly string[], truth: ArrayLike<number>, predicted: ArrayLike<number>): ClassificationReport {
  if (truth.length !== predicted.length) throw new RangeError(`${truth.length} labels for ${predicted.length} predictions`);
  const k = labels.length;
  const confusion = Array.from({ length: k }, () => new Array<number>(k).fill(0));
  let correct = 0;
  for (let i = 0; i < truth.length; i++) {
    const t = truth[i] ?? -1;
    const p = predicted[i] ?? -1;
    const row = confusion[t];
    if (!row || p < 0 || p >= k) throw new RangeError(`class index out of range at item ${i}: truth ${t}, predicted ${p}`);
    row[p] = (row[p] ?? 0) + 1;
    if (t === p) correct++;
  }
  const support: Record<string, number> = {};
  const recall: Record<string, number | null> = {};
  const precision: Record<string, number | null> = {};
  labels.forEach((name, c) => {
    const row = confusion[c] ?? [];
    const s = row.reduce((a, b) => a + b, 0);
    const predictedAs = confusion.reduce((a, r) => a + (r[c] ?? 0), 0);
    support[name] = s;
    recall[name] = s > 0 ? round((row[c] ?? 0) / s) : null;
    precision[name] = predictedAs > 0 ? round((row[c] ?? 0) / predictedAs) : null;
  });
  return { count: truth.length, correct, accuracy: truth.length > 0 ? round(correct / truth.length) : 0, labels: [...labels], support, recall, precision, confusion };
}

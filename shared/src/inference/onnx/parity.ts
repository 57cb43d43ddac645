/**
 * How far an exported model's outputs are from the TF.js model's, as the export CLI and the
 * parity test measure it. Outputs are compared item by item (one row of the batch):
 *
 *   itemRelErr  = max_i |a_i - b_i| / max(max_i |b_i|, 1e-6)     (b the TF.js reference)
 *   normRelErr  = the largest itemRelErr over the batch           (asserted <= 1e-4)
 *   elemRelErr  = max_i |a_i - b_i| / max(|a_i|, |b_i|, 1e-3)     (reported: element-wise, it
 *                 is dominated by outputs near 0, where float32 rounding of the ~1-sized
 *                 values they were computed from is all that differs)
 */
export interface ParityError {
  /** Largest per-item normwise (infinity-norm) relative error. */
  normRelErr: number;
  /** Largest element-wise relative error, denominators floored at 1e-3. */
  elemRelErr: number;
  /** Largest absolute difference. */
  maxAbsErr: number;
}

export function parityError(reference: ArrayLike<number>, candidate: ArrayLike<number>, itemSize: number): ParityError {
  if (reference.length !== candidate.length) throw new RangeError(`outputs differ in length: ${reference.length} vs ${candidate.length}`);
  if (itemSize < 1 || reference.length % itemSize !== 0) throw new RangeError(`item size ${itemSize} does not divide ${reference.length} outputs`);
  let normRelErr = 0;
  let elemRelErr = 0;
  let maxAbsErr = 0;
  for (let start = 0; start < reference.length; start += itemSize) {
    let itemAbs = 0;
    let itemMax = 0;
    for (let i = start; i < start + itemSize; i++) {
      const b = reference[i] ?? NaN;
      const a = candidate[i] ?? NaN;
      const d = Math.abs(a - b);
      if (Number.isNaN(d)) return { normRelErr: NaN, elemRelErr: NaN, maxAbsErr: NaN };
      itemAbs = Math.max(itemAbs, d);
      itemMax = Math.max(itemMax, Math.abs(b));
      elemRelErr = Math.max(elemRelErr, d / Math.max(Math.abs(a), Math.abs(b), 1e-3));
    }
    maxAbsErr = Math.max(maxAbsErr, itemAbs);
    normRelErr = Math.max(normRelErr, itemAbs / Math.max(itemMax, 1e-6));
  }
  return { normRelErr, elemRelErr, maxAbsErr };
}

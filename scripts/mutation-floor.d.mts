/** Types of scripts/mutation-floor.mjs, for its test. */
export interface FileScore {
  file: string;
  detected: number;
  valid: number;
  score: number;
}
export function fileScores(report: { files: Record<string, { mutants: { status: string }[] }> }): FileScore[];
export function belowFloor(scores: FileScore[], floor: number): string[];

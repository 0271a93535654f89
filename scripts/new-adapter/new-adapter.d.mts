/** Types of the parts of scripts/new-adapter/new-adapter.mjs that its tests import. */
export function addRow(text: string, row: string, file: string, id: string): string;

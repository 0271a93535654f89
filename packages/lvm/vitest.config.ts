import { defineConfig } from 'vitest/config';
import { hvkitVitest } from '../../vitest.shared';

export default defineConfig(hvkitVitest());

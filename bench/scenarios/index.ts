/** The scenario list, in run order. Direct baselines come first: every ratio is against them. */
import { direct, direct16k } from './direct.js'
import { noPlugins, noPlugins16k } from './no-plugins.js'
import { routes10k } from './routes-10k.js'
import type { Scenario } from './types.js'

export const SCENARIOS: Scenario[] = [direct, noPlugins, routes10k, direct16k, noPlugins16k]
export type { Scenario }

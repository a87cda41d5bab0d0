/**
 * The one module that imports uWebSockets.js (house rule: nothing else does): it loads the best build
 * present once per process (./uws-loader.ts says which, in what order, and why the binary is loaded
 * directly) and exports it with the description of what was loaded, for the logs and /status.
 */
import { loadUws, type UwsModule } from './uws-loader.js'

export type { HttpRequest, HttpResponse, TemplatedApp, us_listen_socket, RecognizedString } from 'uwebsockets'
export type { UwsBuild } from './uws-loader.js'
export { describeUws } from './uws-loader.js'

const loaded = loadUws({ only: process.env.BOUNCER_UWS })
export const uws: UwsModule = loaded.module
export const uwsBuild = loaded.build


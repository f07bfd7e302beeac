/** A run in the main area: its graph and tree, live, with a step's details (see `runview/`). */
export { activateRunViews } from './runview/command';
export { RunView, type RunViewOptions } from './runview/view';

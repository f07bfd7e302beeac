/** The panel's icons (inline SVGs, coloured by the theme through `jp-icon3`/`jp-icon-accent0`). */
import { LabIcon } from '@jupyterlab/ui-components';

/** Coflux: a small flow of three steps. */
export const cofluxIcon = new LabIcon({
  name: 'coflux:panel',
  svgstr: `<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16" viewBox="0 0 24 24">
  <g class="jp-icon3" fill="#616161">
    <circle cx="5" cy="6" r="3"/>
    <circle cx="5" cy="18" r="3"/>
    <circle cx="19" cy="12" r="3"/>
    <path d="M7.4 7.2l8.8 3.6-.8 1.8-8.8-3.6zM7.4 16.8l8-3.3.8 1.8-8 3.3z"/>
  </g>
</svg>`
});

export const pauseIcon = new LabIcon({
  name: 'coflux:pause',
  svgstr: `<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16" viewBox="0 0 24 24">
  <g class="jp-icon3" fill="#616161"><path d="M6 5h4v14H6zM14 5h4v14h-4z"/></g>
</svg>`
});

export const resumeIcon = new LabIcon({
  name: 'coflux:resume',
  svgstr: `<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16" viewBox="0 0 24 24">
  <g class="jp-icon3" fill="#616161"><path d="M7 5l12 7-12 7z"/></g>
</svg>`
});

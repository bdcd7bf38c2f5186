// The mixdown dialog: format, loudness and stems; Render (an editor's) shows the job's
// percentage and stays disabled until it ends; every earlier mixdown of the project is listed
// for download. The dialog asks the job's state itself once it is submitted, so it never waits
// for an event that came before the answer.

import { api } from './api.js';
import { dialog, h, toast, unavailable } from './ui.js';

const FORMATS = [
  ['wav24', 'WAV 24-bit'],
  ['wav16', 'WAV 16-bit (CD)'],
  ['wav_f32', 'WAV 32-bit float'],
  ['flac24', 'FLAC 24-bit'],
  ['flac16', 'FLAC 16-bit'],
];

export function mixdownDialog(studio) {
  const format = h('select', { name: 'format' }, FORMATS.map(([value, label]) => h('option', { value }, label)));
  const normalize = h('input', { type: 'checkbox', name: 'normalize' });
  const stems = h('input', { type: 'checkbox', name: 'stems' });
  const status = h('output', { name: 'mixdown-progress', class: 'muted' });
  const bar = h('progress', { max: 1, value: 0, hidden: true });
  const links = h('div', { class: 'links' });
  const earlier = h('ul', { class: 'mixdowns', name: 'earlier-mixdowns' });
  const renderButton = h('button', { class: 'primary', name: 'render', onclick: () => render() }, 'Render');
  if (!studio.canEdit) unavailable(renderButton, studio.viewerReason);

  const downloads = (job, name = 'download') => {
    const result = job.result ?? {};
    const ext = result.format?.startsWith('flac') ? 'flac' : 'wav';
    return (result.files ?? []).map((file) => {
      if (file.kind === 'mix') {
        return h('button', { name, onclick: () => studio.download(file.url, `${studio.project.name}.${ext}`) }, `Download ${ext.toUpperCase()}`);
      }
      const track = studio.tracks.find((t) => t.id === file.track_id);
      return h('button', { name: 'download-stem', onclick: () => studio.download(file.url, `${track?.name ?? 'stem'}.${ext}`) }, `Stem: ${track?.name ?? 'deleted track'}`);
    });
  };

  const listEarlier = async () => {
    const jobs = await api.get(`/api/projects/${studio.projectId}/mixdowns?limit=20`).catch(() => []);
    const done = jobs.filter((j) => j.status === 'succeeded');
    earlier.replaceChildren(
      ...(done.length
        ? done.map((job) => h('li', {}, [h('span', { class: 'muted' }, `${new Date(job.created_at).toLocaleString()} · ${job.result?.format ?? ''}`), ...downloads(job, 'download-earlier')]))
        : [h('li', { class: 'muted' }, 'No mixdowns yet.')]),
    );
  };

  const show = (job) => {
    const percent = Math.round((job.progress ?? 0) * 100);
    bar.hidden = false;
    bar.value = job.progress ?? 0;
    status.textContent = job.status === 'succeeded' ? 'Done.' : job.status === 'failed' ? `Failed: ${job.error ?? 'unknown reason'}` : `Rendering… ${percent} %`;
  };

  const render = async () => {
    const body = { format: format.value, stems: stems.checked };
    if (normalize.checked) body.normalize = { target_lufs: -14, ceiling_dbtp: -1 };
    renderButton.disabled = true;
    links.replaceChildren();
    try {
      const submitted = await api.post(`/api/projects/${studio.projectId}/mixdown`, body);
      let job = submitted.job;
      show(job);
      // Progress from the socket as it comes, and from the job row until it ends, whichever
      // is first: an event that came before this answer is not waited for.
      const stop = studio.onJob(job.id, (update) => show({ ...job, ...update }));
      try {
        while (!['succeeded', 'failed', 'cancelled'].includes(job.status)) {
          await new Promise((r) => setTimeout(r, 500));
          // A poll lost to the network is tried again; the job runs on meanwhile.
          job = await api.get(`/api/jobs/${job.id}`).catch((error) => (error.status === 404 ? Promise.reject(error) : job));
          show(job);
        }
      } finally {
        stop();
      }
      if (job.status === 'succeeded') {
        links.replaceChildren(...downloads(job));
        listEarlier();
      } else {
        toast(`The mixdown ${job.status}: ${job.error ?? 'no reason given'}`);
      }
    } catch (error) {
      toast(error.message);
    } finally {
      renderButton.disabled = !studio.canEdit;
    }
  };

  dialog('Mixdown', [
    h('label', {}, ['Format', format]),
    h('label', {}, [normalize, 'Normalise to −14 LUFS (true peak −1 dBTP)']),
    h('label', {}, [stems, 'Stems (one file per track)']),
    h('div', { class: 'row' }, [bar, status]),
    links,
    h('h3', {}, 'Earlier mixdowns'),
    earlier,
  ], [renderButton]);
  listEarlier();
}

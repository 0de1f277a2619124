/* `/jobs/<id>/view`: one row per set, kept live from the job's event stream; the attempt timeline,
   retry and cancel, the exports (fetched with the key when there is one), the bible, the script. */
'use strict';

document.addEventListener('DOMContentLoaded', () => {
  const article = document.getElementById('job');
  const jobId = article.dataset.jobId;
  const base = '/jobs/' + encodeURIComponent(jobId);
  const FINAL = ['completed', 'partial', 'failed', 'cancelled'];
  const sets = new Map();
  const text = (id, value) => { document.getElementById(id).textContent = value == null ? '' : value; };
  let job = null;
  let bibleShown = false;

  function row(set) {
    let tr = document.querySelector('#sets tr[data-set-number="' + set.set_number + '"]');
    if (!tr) {
      tr = MovieGen.el('tr', null, { 'data-set-number': set.set_number });
      const body = document.querySelector('#sets tbody');
      const after = [...body.children].find((other) => Number(other.dataset.setNumber) > set.set_number);
      body.insertBefore(tr, after || null);
    }
    tr.dataset.status = set.status;
    const next = set.status === 'retrying' && set.next_attempt_at ? MovieGen.when(set.next_attempt_at) : '';
    const error = set.error || (set.status === 'success' ? '' : set.last_error) || '';
    tr.replaceChildren(MovieGen.el('td', set.set_number),
      MovieGen.el('td', set.first_segment + '–' + set.last_segment),
      MovieGen.el('td', set.status, { class: 'status' }), MovieGen.el('td', set.attempts),
      MovieGen.el('td', error, { class: 'set-error' }), MovieGen.el('td', next));
  }

  let drawing = null;
  function redraw() {
    if (drawing) return;
    drawing = requestAnimationFrame(() => {
      drawing = null;
      const rows = [...sets.values()].sort((a, b) => a.set_number - b.set_number)
        .map((set) => ({ label: 'Set ' + set.set_number, attempt_history: set.attempt_history }));
      if (job && job.story_bible) rows.unshift({ label: 'Bible', attempt_history: job.story_bible.attempt_history });
      Timeline.draw(document.getElementById('timeline'), rows);
    });
  }

  function showJob(data) {
    job = data;
    article.dataset.state = data.state;
    text('job-title', data.title || 'Job ' + jobId);
    text('job-idea', data.idea);
    text('job-state', data.state);
    const p = data.progress;
    text('job-progress', p.sets_succeeded + ' of ' + p.sets_total + ' sets done' +
      (p.sets_failed ? ', ' + p.sets_failed + ' failed' : '') + (p.sets_cancelled ? ', ' + p.sets_cancelled + ' cancelled' : ''));
    text('job-error', data.error);
    redraw();
    const final = FINAL.includes(data.state);
    document.getElementById('cancel').disabled = final || data.state === 'cancelling';
    document.getElementById('retry-failed').disabled = !(final && (p.sets_failed || p.sets_cancelled || data.state === 'failed'));
    if (data.title && !bibleShown) loadBible();
  }

  function onEvent(event) {
    if (event.event === 'set') {
      sets.set(event.data.set_number, event.data);
      row(event.data);
      redraw();
    } else if (event.event === 'job') {
      showJob(event.data);
    } else if (event.event === 'end') {
      if (event.data.state) { showJob(event.data); loadBible(); loadScreenplay(); }
      else text('job-error', 'This job no longer exists.');
    } else if (event.event === 'missing') {
      text('job-error', 'No such job (or it belongs to another API key).');
    }
  }

  async function loadBible() {
    bibleShown = true;
    let script;
    try { script = await MovieGen.json('GET', base + '/script'); } catch (err) { bibleShown = false; return; }
    if (!script.story_title) { bibleShown = false; return; }
    text('bible-title', script.story_title);
    text('bible-logline', script.logline);
    text('bible-tone', script.tone ? 'Tone: ' + script.tone : '');
    const pairs = (list, term, detail) => list.flatMap((item) => [MovieGen.el('dt', term(item)), MovieGen.el('dd', detail(item))]);
    document.getElementById('bible-cast').replaceChildren(...pairs(script.characters || [],
      (c) => c.name + (c.role ? ' (' + c.role + ')' : ''), (c) => c.visual_description));
    document.getElementById('bible-locations').replaceChildren(...pairs(script.locations || [],
      (l) => l.name, (l) => l.description));
    document.getElementById('bible-synopses').replaceChildren(...(script.set_synopses || []).map(
      (s) => MovieGen.el('li', s.summary, { value: s.set_number })));
    document.getElementById('bible').hidden = false;
  }

  async function loadScreenplay() {
    if (!job || !job.progress.sets_succeeded) return;
    const response = await MovieGen.request('GET', base + '/script?format=html');
    if (!response.ok) return;
    const frame = document.getElementById('screenplay');
    frame.srcdoc = await response.text();  // a sandboxed frame: no script runs there
    document.getElementById('screenplay-box').hidden = false;
  }

  async function act(button, path, body, followAgain) {
    text('action-error', '');
    button.disabled = true;
    try {
      await MovieGen.json('POST', path, body, { Prefer: 'respond-async' });
      if (followAgain) MovieGen.follow(base + '/events', onEvent);  // the last stream ended with the job
    } catch (err) {
      text('action-error', err.message);
      button.disabled = false;
    }
  }
  document.getElementById('retry-failed').addEventListener('click', (event) =>
    act(event.target, '/retry-failed-story-sets', { job_id: jobId }, true));
  document.getElementById('cancel').addEventListener('click', (event) => act(event.target, base + '/cancel', undefined, false));

  for (const link of document.querySelectorAll('a[data-format]')) {
    link.addEventListener('click', async (event) => {
      if (!MovieGen.key()) return;  // without keys the link downloads by itself
      event.preventDefault();
      const response = await MovieGen.request('GET', link.getAttribute('href'));
      if (!response.ok) { text('action-error', 'Download failed: HTTP ' + response.status); return; }
      const name = /filename="([^"]+)"/.exec(response.headers.get('Content-Disposition') || '');
      const url = URL.createObjectURL(await response.blob());
      const save = MovieGen.el('a', null, { href: url, download: name ? name[1] : jobId + '.' + link.dataset.format });
      document.body.append(save);
      save.click();
      save.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10000);
    });
  }

  setInterval(() => { if (job && !FINAL.includes(job.state)) redraw(); }, 1000);  // running bars grow
  MovieGen.follow(base + '/events', onEvent);
});

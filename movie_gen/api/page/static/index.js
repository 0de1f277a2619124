/* `/`: submit an idea through the API and open the job; list this key's jobs, newest first. */
'use strict';

document.addEventListener('DOMContentLoaded', () => {
  const form = document.getElementById('generate-form');
  const error = document.getElementById('form-error');
  const number = (id) => Number(document.getElementById(id).value);

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    error.textContent = '';
    document.getElementById('generate').disabled = true;
    try {
      const job = await MovieGen.json('POST', '/generate-movie-auto', {
        idea: document.getElementById('idea').value,
        total_segments: number('total-segments'),
        segments_per_set: number('segments-per-set'),
        max_retries: number('max-retries'),
      }, { Prefer: 'respond-async' });
      location.assign('/jobs/' + encodeURIComponent(job.job_id) + '/view');
    } catch (err) {
      error.textContent = err.message;
      document.getElementById('generate').disabled = false;
    }
  });

  const FINAL = ['completed', 'partial', 'failed', 'cancelled'];
  async function listJobs() {
    let page;
    try {
      page = await MovieGen.json('GET', '/jobs?limit=50');
    } catch (err) {
      error.textContent = 'Could not list the jobs: ' + err.message;
      return;
    }
    const body = document.querySelector('#jobs tbody');
    body.replaceChildren(...page.jobs.map((job) => {
      const row = MovieGen.el('tr', null, { 'data-job-id': job.job_id, 'data-state': job.state });
      const link = MovieGen.el('a', job.title || 'Job ' + job.job_id.slice(0, 8),
        { href: '/jobs/' + encodeURIComponent(job.job_id) + '/view' });
      const title = MovieGen.el('td');
      title.append(link);
      const p = job.progress || {};
      row.append(MovieGen.el('td', MovieGen.when(job.created_at)), title, MovieGen.el('td', job.state),
        MovieGen.el('td', (p.sets_succeeded || 0) + ' / ' + job.sets_total + ' sets' +
          (p.sets_failed ? ', ' + p.sets_failed + ' failed' : '')));
      return row;
    }));
    document.getElementById('jobs-empty').hidden = page.jobs.length > 0;
    if (page.jobs.some((job) => !FINAL.includes(job.state))) setTimeout(listJobs, 3000);
  }
  listJobs();
});

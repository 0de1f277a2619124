/* The attempt timeline: every set's attempts on one time axis, drawn as SVG from attempt_history.
   A bar per attempt from its start to its end, coloured by outcome; the backoff wait chosen after
   a failed attempt as a lighter bar; the error (and times) on hover, in each bar's <title>. */
'use strict';

const Timeline = (() => {
  const SVG = 'http://www.w3.org/2000/svg';
  const ROW = 18, LEFT = 64, AXIS = 22;

  function node(tag, attrs, text) {
    const item = document.createElementNS(SVG, tag);
    for (const [name, value] of Object.entries(attrs)) item.setAttribute(name, value);
    if (text !== undefined) item.textContent = text;
    return item;
  }

  /* `sets`: [{label, attempt_history}], the story bible first. */
  function spans(sets, now) {
    const rows = [];
    for (const set of sets) {
      const items = [];
      for (const attempt of set.attempt_history || []) {
        if (!attempt.started_at) continue;
        const start = Date.parse(attempt.started_at);
        const end = attempt.finished_at ? Date.parse(attempt.finished_at) : now;
        const outcome = attempt.finished_at ? (attempt.outcome || 'error') : 'running';
        const what = set.label + ', attempt ' + attempt.attempt + ': ' + outcome +
          (attempt.error_class ? ' (' + attempt.error_class + ')' : '') + ', ' +
          ((end - start) / 1000).toFixed(1) + ' s' + (attempt.error ? '\n' + attempt.error : '');
        items.push({ start, end, kind: outcome, title: what });
        if (attempt.finished_at && attempt.delay_s != null) {
          items.push({ start: end, end: end + attempt.delay_s * 1000, kind: 'wait',
            title: set.label + ': backoff wait of ' + attempt.delay_s + ' s before the next attempt' });
        }
      }
      rows.push({ label: set.label, items });
    }
    return rows;
  }

  function draw(svg, sets) {
    const now = Date.now();
    const rows = spans(sets, now);
    const all = rows.flatMap((row) => row.items);
    svg.replaceChildren();
    const width = Math.max(320, svg.parentNode.clientWidth || 800);
    svg.setAttribute('viewBox', '0 0 ' + width + ' ' + (rows.length * ROW + AXIS));
    svg.setAttribute('height', String(rows.length * ROW + AXIS));
    if (!all.length) {
      svg.append(node('text', { x: 4, y: 14, class: 'label' }, 'No attempt yet.'));
      return;
    }
    const t0 = Math.min(...all.map((s) => s.start));
    const t1 = Math.max(t0 + 1000, ...all.map((s) => s.end));
    const x = (t) => LEFT + (t - t0) / (t1 - t0) * (width - LEFT - 8);
    rows.forEach((row, i) => {
      const y = i * ROW;
      svg.append(node('text', { x: 4, y: y + 13, class: 'label' }, row.label));
      for (const item of row.items) {
        const rect = node('rect', { x: x(item.start).toFixed(1), y: y + 3, height: ROW - 6,
          width: Math.max(2, x(item.end) - x(item.start)).toFixed(1),
          class: (item.kind === 'wait' ? 'wait' : 'bar ' + item.kind) });
        rect.append(node('title', {}, item.title));
        svg.append(rect);
      }
    });
    const seconds = (t1 - t0) / 1000;
    const step = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 1800, 3600].find((s) => seconds / s <= 8) || 7200;
    for (let s = 0; s <= seconds; s += step) {
      const at = x(t0 + s * 1000);
      svg.append(node('line', { x1: at, x2: at, y1: 0, y2: rows.length * ROW, class: 'tick' }));
      svg.append(node('text', { x: at + 2, y: rows.length * ROW + 15, class: 'label' }, s + ' s'));
    }
  }

  return { draw };
})();

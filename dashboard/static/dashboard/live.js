/* The live dashboard (dashboard/views.py): a realtime client in the Django admin.
 *
 * It gets an access token for the logged-in staff user (POST tokenUrl), opens the
 * native socket /ws/ with it (subprotocol "bearer.<token>", so the token is in no URL),
 * subscribes to config.topics, and draws what arrives: counters, a per-second event
 * rate chart (plain canvas), a filterable feed, Shopify sync jobs and low-stock alerts.
 * It pings at the server's heartbeat interval, refreshes its token on auth:expiring,
 * and reconnects with backoff. Everything from the server is shown with textContent.
 */
(function () {
  'use strict'

  const config = JSON.parse(document.getElementById('rt-config').textContent)
  const $ = (id) => document.getElementById(id)
  const csrfToken = () => document.querySelector('#rt-csrf [name=csrfmiddlewaretoken]').value

  const FEED_MAX = 200
  const RATE_WINDOW = 10 // seconds for "events / s"
  const HISTORY = config.historySeconds || 300
  const COLORS = {
    inventory: '#2a7ab0', order: '#c0392b', shopify: '#27ae60', notification: '#8e44ad',
    user: '#d35400', security: '#b7950b', other: '#7f8c8d'
  }
  const palette = ['#16a085', '#2c3e50', '#e84393', '#6c5ce7', '#00b894']

  const state = {
    socket: null, acks: 0, attempts: 0, paused: false, total: 0,
    buckets: new Map(), // second -> Map(kind -> count)
    totals: new Map(), // kind -> count
    kinds: [],
    jobs: new Map(), // jobId -> payload
    alerts: new Map(), // levelId -> payload
    pingTimer: null
  }

  // -- helpers -----------------------------------------------------------------------

  function el (tag, attrs, ...children) {
    const node = document.createElement(tag)
    for (const [key, value] of Object.entries(attrs || {})) {
      if (key === 'class') node.className = value
      else if (key.startsWith('data-')) node.setAttribute(key, value)
      else node[key] = value
    }
    for (const child of children) {
      if (child !== null && child !== undefined) node.append(child instanceof Node ? child : String(child))
    }
    return node
  }

  function kindOf (frame) {
    if (frame.event === 'notification') return 'notification'
    const prefix = String(frame.event || '').split(':')[0]
    return prefix || 'other'
  }

  function colorOf (kind) {
    if (!COLORS[kind]) COLORS[kind] = palette[Object.keys(COLORS).length % palette.length]
    return COLORS[kind]
  }

  function setStatus (stateName, text) {
    const node = $('rt-status')
    node.dataset.state = stateName
    node.textContent = text
  }

  const nowSecond = () => Math.floor(Date.now() / 1000)

  // -- token and socket ------------------------------------------------------------------

  async function fetchToken () {
    const response = await fetch(config.tokenUrl, {
      method: 'POST', credentials: 'same-origin', headers: { 'X-CSRFToken': csrfToken(), Accept: 'application/json' }
    })
    if (!response.ok) throw new Error(`token: HTTP ${response.status}`)
    return (await response.json()).token
  }

  function send (event, data, withAck) {
    const socket = state.socket
    if (!socket || socket.readyState !== WebSocket.OPEN) return
    const frame = { event }
    if (data !== undefined) frame.data = data
    if (withAck) frame.ack = ++state.acks
    socket.send(JSON.stringify(frame))
  }

  async function connect () {
    setStatus('connecting', state.attempts ? 'Reconnecting…' : 'Connecting…')
    let token
    try {
      token = await fetchToken()
    } catch (error) {
      return retry(`Could not get a token (${error.message})`)
    }
    const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:'
    const socket = new WebSocket(`${scheme}//${location.host}${config.wsPath}`, [`bearer.${token}`])
    state.socket = socket
    socket.onmessage = (message) => {
      let frame
      try { frame = JSON.parse(message.data) } catch (error) { return }
      onFrame(frame)
    }
    socket.onclose = (event) => {
      clearInterval(state.pingTimer)
      if (state.socket === socket) retry(`Disconnected (${event.code})`)
    }
  }

  function retry (why) {
    state.socket = null
    state.attempts += 1
    const delay = Math.min(30, 2 ** Math.min(state.attempts, 5)) * (0.5 + Math.random() / 2)
    setStatus('offline', `${why}; retrying in ${Math.round(delay)} s`)
    setTimeout(connect, delay * 1000)
  }

  function onFrame (frame) {
    if (frame.ack !== undefined) return onAck(frame)
    switch (frame.event) {
      case 'connected': return onConnected(frame.data)
      case 'auth:expiring': return refreshToken()
      case 'pong': case 'subscribed': case 'unsubscribed': case 'auth:refreshed': return
      case 'error': return showError(frame)
      default: return onEvent(frame)
    }
  }

  function onConnected (data) {
    state.attempts = 0
    setStatus('live', `Live as ${data.username}`)
    for (const topic of config.topics) send(`subscribe:${topic}`, {}, true)
    const interval = Math.max(5, Number(data.heartbeatInterval) || 25)
    clearInterval(state.pingTimer)
    state.pingTimer = setInterval(() => send('ping'), interval * 1000)
  }

  const joined = new Set()
  const refused = new Set()
  function onAck (frame) {
    if (frame.error) return showError({ error: frame.error.message, code: frame.error.code })
    const data = frame.data || {}
    for (const room of data.rooms || []) joined.add(room)
    for (const item of data.refused || []) refused.add(`${item.room} (${item.reason})`)
    $('rt-rooms').textContent = `rooms: ${[...joined].sort().join(', ')}` +
      (refused.size ? ` — refused: ${[...refused].sort().join(', ')}` : '')
  }

  async function refreshToken () {
    try {
      send('auth:refresh', { token: await fetchToken() }, true)
    } catch (error) {
      showError({ error: `Could not refresh the token (${error.message})`, code: 'token_refresh' })
    }
  }

  function showError (frame) {
    addFeedRow({ event: 'error', data: { error: frame.error, code: frame.code }, timestamp: new Date().toISOString() }, 'error')
  }

  // -- events -------------------------------------------------------------------------

  function onEvent (frame) {
    const kind = kindOf(frame)
    state.total += 1
    state.totals.set(kind, (state.totals.get(kind) || 0) + 1)
    if (!state.kinds.includes(kind)) addKind(kind)
    const second = nowSecond()
    const bucket = state.buckets.get(second) || new Map()
    bucket.set(kind, (bucket.get(kind) || 0) + 1)
    state.buckets.set(second, bucket)
    addFeedRow(frame, kind)
    const data = frame.data || {}
    if (frame.event === 'shopify:syncStatus' || /^shopify:[a-z]+:progress$/.test(frame.event)) updateJob(data)
    if (frame.event === 'inventory:lowStock') addAlert(data)
    if (frame.event === 'inventory:updated' && data.sellable > data.lowStockThreshold) removeAlert(data.levelId)
    renderCounters()
  }

  function addKind (kind) {
    state.kinds.push(kind)
    $('feed-filter').append(el('option', { value: kind }, kind))
  }

  function summary (frame) {
    const d = frame.data || {}
    switch (frame.event) {
      case 'inventory:updated': {
        const sign = d.delta > 0 ? '+' : ''
        return `${d.sku} at location ${d.locationId}: ${d.previousAvailable} → ${d.available} (${sign}${d.delta}), ` +
          `${d.sellable} sellable${d.reason ? ` — ${d.reason}` : ''}`
      }
      case 'inventory:lowStock':
        return `${d.productTitle} ${d.variantTitle} (${d.sku}): ${d.sellable} sellable, threshold ${d.lowStockThreshold}`
      case 'inventory:reservation':
        return `${d.action} ${d.quantity} × ${d.sku} (${d.status})`
      case 'order:updated':
        return `Order ${d.number || d.orderId}: ${d.status}${d.previousStatus && d.previousStatus !== d.status ? ` (was ${d.previousStatus})` : ''}`
      case 'shopify:syncStatus':
        return `${d.resource} sync ${d.status}: ${d.processed}${d.total != null ? `/${d.total}` : ''}`
      case 'notification':
        return `${frame.type}: ${d.title || ''}${d.message ? ` — ${d.message}` : ''}`
      case 'error':
        return `${d.code}: ${d.error}`
      default:
        if (/^shopify:[a-z]+:progress$/.test(frame.event)) return `${d.resource} ${d.processed}/${d.total ?? '?'}`
        return JSON.stringify(d).slice(0, 160)
    }
  }

  function addFeedRow (frame, kind) {
    if (state.paused && kind !== 'error') return
    const time = new Date(frame.timestamp || Date.now()).toLocaleTimeString([], { hour12: false })
    const label = frame.event === 'notification' ? `notification ${frame.type}` : frame.event
    const row = el('li', { class: 'rt-row', 'data-kind': kind, 'data-event': frame.event },
      el('span', { class: 'rt-time' }, time),
      el('span', { class: 'rt-event' }, label),
      el('details', { class: 'rt-summary', title: 'Show the event data' },
        el('summary', {}, summary(frame)), el('pre', {}, JSON.stringify(frame.data, null, 2))))
    row.querySelector('.rt-event').style.borderColor = colorOf(kind)
    row.hidden = !matchesFilter(kind)
    const feed = $('feed')
    feed.prepend(row)
    while (feed.children.length > FEED_MAX) feed.lastElementChild.remove()
  }

  function matchesFilter (kind) {
    const wanted = $('feed-filter').value
    return !wanted || wanted === kind
  }

  // -- Shopify sync jobs -----------------------------------------------------------------

  function updateJob (data) {
    if (!data.jobId) return
    const known = state.jobs.get(data.jobId) || {}
    state.jobs.set(data.jobId, { ...known, ...data })
    renderJobs()
  }

  function renderJobs () {
    const box = $('jobs')
    const jobs = [...state.jobs.values()].sort((a, b) => Number(b.jobId) - Number(a.jobId)).slice(0, 10)
    if (!jobs.length) {
      box.replaceChildren(el('p', { class: 'rt-empty' }, 'No sync job running.'))
      return
    }
    box.replaceChildren(...jobs.map((job) => {
      const bar = el('progress', { max: job.total || 1 })
      if (job.total) bar.value = Math.min(job.processed, job.total)
      else if (job.status === 'completed') bar.value = 1
      else bar.removeAttribute('value') // indeterminate: total unknown
      const percent = job.percent != null ? `${job.percent}%` : ''
      return el('div', { class: `rt-job rt-job-${job.status}`, 'data-job': job.jobId },
        el('div', {}, el('strong', {}, `#${job.jobId} ${job.resource}`), ` ${job.status} `,
          el('span', { class: 'rt-job-count' }, `${job.processed}${job.total != null ? ` / ${job.total}` : ''} ${percent}`),
          job.failed ? el('span', { class: 'rt-job-failed' }, ` (${job.failed} failed)`) : null),
        bar)
    }))
  }

  // -- low stock ------------------------------------------------------------------------

  function addAlert (data) {
    state.alerts.delete(data.levelId)
    state.alerts.set(data.levelId, data)
    renderAlerts()
  }

  function removeAlert (levelId) {
    if (state.alerts.delete(levelId)) renderAlerts()
  }

  function renderAlerts () {
    const list = $('lowstock')
    const alerts = [...state.alerts.values()].reverse()
    if (!alerts.length) {
      list.replaceChildren(el('li', { class: 'rt-empty' }, 'No low stock.'))
    } else {
      list.replaceChildren(...alerts.map((a) => el('li', { 'data-level': a.levelId },
        el('strong', {}, `${a.productTitle} ${a.variantTitle}`), ` ${a.sku} at location ${a.locationId}: `,
        el('span', { class: 'rt-sellable' }, `${a.sellable} sellable`), ` (threshold ${a.lowStockThreshold})`)))
    }
    renderCounters()
  }

  // -- counters and chart ---------------------------------------------------------------

  function windowCounts (seconds) {
    const since = nowSecond() - seconds
    const counts = new Map()
    for (const [second, bucket] of state.buckets) {
      if (second <= since) continue
      for (const [kind, n] of bucket) counts.set(kind, (counts.get(kind) || 0) + n)
    }
    return counts
  }

  function renderCounters () {
    const recent = windowCounts(RATE_WINDOW)
    const recentTotal = [...recent.values()].reduce((a, b) => a + b, 0)
    $('count-rate').textContent = (recentTotal / RATE_WINDOW).toFixed(1)
    $('count-events').textContent = state.total
    $('count-lowstock').textContent = state.alerts.size
    $('count-syncs').textContent = [...state.jobs.values()].filter((j) => j.status === 'running' || j.status === 'pending').length
    const body = $('rates').tBodies[0]
    body.replaceChildren(...state.kinds.map((kind) => el('tr', { 'data-kind': kind },
      el('td', {}, el('span', { class: 'rt-swatch' }), kind),
      el('td', { class: 'rt-rate' }, ((recent.get(kind) || 0) / RATE_WINDOW).toFixed(1)),
      el('td', { class: 'rt-total' }, state.totals.get(kind) || 0))))
    for (const row of body.rows) row.querySelector('.rt-swatch').style.background = colorOf(row.dataset.kind)
  }

  function drawChart () {
    const canvas = $('rate-chart')
    const width = canvas.clientWidth || canvas.width
    const height = canvas.height
    if (canvas.width !== width) canvas.width = width
    const ctx = canvas.getContext('2d')
    const style = getComputedStyle(document.body)
    const fg = style.getPropertyValue('--body-quiet-color').trim() || '#666'
    ctx.clearRect(0, 0, width, height)
    const end = nowSecond()
    const start = end - HISTORY + 1
    for (const second of state.buckets.keys()) if (second < start) state.buckets.delete(second)
    const series = state.kinds.map((kind) => {
      const points = []
      for (let s = start; s <= end; s++) points.push(state.buckets.get(s)?.get(kind) || 0)
      return { kind, points }
    })
    const max = Math.max(1, ...series.flatMap((s) => s.points))
    const left = 34; const bottom = height - 18; const top = 8
    const x = (i) => left + (i / (HISTORY - 1)) * (width - left - 6)
    const y = (v) => bottom - (v / max) * (bottom - top)
    ctx.strokeStyle = fg; ctx.fillStyle = fg; ctx.lineWidth = 1; ctx.font = '11px sans-serif'
    ctx.beginPath(); ctx.moveTo(left, top); ctx.lineTo(left, bottom); ctx.lineTo(width - 6, bottom); ctx.stroke()
    ctx.fillText(String(max), 4, top + 8); ctx.fillText('0', 4, bottom)
    ctx.fillText(`-${HISTORY}s`, left, height - 4); ctx.fillText('now', width - 30, height - 4)
    for (const { kind, points } of series) {
      ctx.beginPath()
      points.forEach((v, i) => (i ? ctx.lineTo(x(i), y(v)) : ctx.moveTo(x(i), y(v))))
      ctx.strokeStyle = colorOf(kind); ctx.lineWidth = 1.5; ctx.stroke()
      ctx.lineTo(x(points.length - 1), bottom); ctx.lineTo(x(0), bottom); ctx.closePath()
      ctx.globalAlpha = 0.12; ctx.fillStyle = colorOf(kind); ctx.fill(); ctx.globalAlpha = 1
    }
    $('chart-legend').replaceChildren(...state.kinds.map((kind) => {
      const swatch = el('span', { class: 'rt-swatch' })
      swatch.style.background = colorOf(kind)
      return el('span', { class: 'rt-legend-item' }, swatch, kind)
    }))
  }

  async function pollStats () {
    try {
      const response = await fetch(config.statsUrl, { credentials: 'same-origin', headers: { Accept: 'application/json' } })
      if (!response.ok) return
      const stats = await response.json()
      const all = stats.connectionsAllProcesses
      $('count-connections').textContent = all ?? stats.connectionsTotal
      $('count-connections-scope').textContent = all === null ? `server process ${stats.process}` : 'all server processes'
      $('count-connections').title = `process ${stats.process}: ` +
        Object.entries(stats.connections).map(([p, n]) => `${p}: ${n}`).join(', ')
    } catch (error) { /* the next poll tries again */ }
  }

  // -- announcements ------------------------------------------------------------------------

  function wireAnnounceForm () {
    const form = $('announce-form')
    if (!form || !config.announceUrl) return
    form.addEventListener('submit', async (event) => {
      event.preventDefault()
      const result = $('announce-result')
      result.textContent = 'Sending…'
      try {
        const response = await fetch(config.announceUrl, {
          method: 'POST', body: new FormData(form), credentials: 'same-origin', headers: { Accept: 'application/json' }
        })
        const body = await response.json()
        if (!response.ok) {
          result.textContent = Object.entries(body.errors || {}).map(([f, e]) => `${f}: ${e.join(' ')}`).join('; ') || `HTTP ${response.status}`
          return
        }
        result.textContent = `Sent (#${body.announcementId}).`
        form.querySelector('[name=message]').value = ''
      } catch (error) {
        result.textContent = `Not sent: ${error.message}`
      }
    })
  }

  // -- start -----------------------------------------------------------------------------

  $('feed-filter').addEventListener('change', () => {
    for (const row of $('feed').children) row.hidden = !matchesFilter(row.dataset.kind)
  })
  $('feed-pause').addEventListener('click', (event) => {
    state.paused = !state.paused
    event.target.textContent = state.paused ? 'Resume' : 'Pause'
  })
  $('feed-clear').addEventListener('click', () => $('feed').replaceChildren())
  for (const job of config.jobs || []) state.jobs.set(job.jobId, job)
  for (const alert of [...(config.lowStock || [])].reverse()) state.alerts.set(alert.levelId, alert)
  renderJobs()
  renderAlerts()
  wireAnnounceForm()
  setInterval(() => { renderCounters(); drawChart() }, 1000)
  setInterval(pollStats, 3000)
  drawChart()
  pollStats()
  connect()
})()

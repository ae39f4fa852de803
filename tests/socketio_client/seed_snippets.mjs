// The client snippets of the system we replace (shared/reference/original-websocket-infrastructure.md),
// copied as written between the "snippets" markers, run against our server by test_seed_snippets.py.
// The harness only creates the sockets, reports when the subscriptions are in, and exits when stdin closes.
import { createInterface } from "node:readline";
import { io } from "socket.io-client";

const url = process.env.SIO_URL;
const socket = io(url, { auth: { token: process.env.SIO_TOKEN } });
let subscribed = 0;
socket.on("subscribed", () => {
  if (++subscribed === 3) console.log("HARNESS subscribed");
});
createInterface({ input: process.stdin }).on("close", () => process.exit(0));
setTimeout(() => process.exit(3), 30000).unref();

// ---- snippets: API Reference > Connection Events -------------------------------------------------
// Client connection
socket.on('connect', () => {
  console.log('Connected to WebSocket server')
})

// Connection confirmation
socket.on('connected', (data) => {
  console.log('Connection confirmed:', data)
})

// ---- snippets: Subscription Events -------------------------------------------------------------
// Subscribe to inventory updates
socket.emit('subscribe:inventory', {
  locationIds: ['location-1', 'location-2'],
  productIds: ['product-1', 'product-2'],
})

// Subscribe to order updates
socket.emit('subscribe:orders', {
  customerId: 'customer-123', // Optional
})

// Subscribe to notifications
socket.emit('subscribe:notifications')

// ---- snippets: Inventory Events ----------------------------------------------------------------
// Inventory level updates
socket.on('inventory:updated', (payload) => {
  console.log('Inventory updated:', payload.data)
})

// Low stock alerts
socket.on('inventory:lowStock', (payload) => {
  console.log('Low stock alert:', payload.data)
})

// Inventory operations
socket.emit('inventory:update', {
  inventoryItemId: 'item-123',
  quantity: 100,
  reason: 'Stock adjustment',
})

socket.emit('inventory:reserve', {
  inventoryItemId: 'item-123',
  quantity: 10,
  reason: 'Order reservation',
})

// ---- snippets: Order Events --------------------------------------------------------------------
// Order status updates
socket.on('order:updated', (payload) => {
  console.log('Order updated:', payload.data)
})

// ---- snippets: Shopify Events ------------------------------------------------------------------
// Sync status updates
socket.on('shopify:syncStatus', (payload) => {
  console.log('Sync status:', payload.data)
})

// Product sync events
socket.on('shopify:product:progress', (payload) => {
  console.log('Product sync progress:', payload.data)
})

// Webhook events
socket.on('shopify:webhook:received', (payload) => {
  console.log('Webhook received:', payload.data)
})

// ---- snippets: Notification Events -------------------------------------------------------------
// General notifications
socket.on('notification', (payload) => {
  switch (payload.type) {
    case 'user:activity':
      console.log('User activity:', payload.data)
      break
    case 'system:event':
      console.log('System event:', payload.data)
      break
    case 'system:maintenance':
      console.log('Maintenance notification:', payload.data)
      break
    case 'security:alert':
      console.log('Security alert:', payload.data)
      break
  }
})

// ---- snippets: Error Handling > Operation Errors ----------------------------------------------
socket.on('inventory:updateError', (data) => {
  console.error('Inventory update failed:', data.error)
})

socket.on('inventory:reservationError', (data) => {
  console.error('Reservation failed:', data.error)
})

// ---- snippets: Error Handling > Connection Errors, on a socket with a bad token ----------------
{
  const socket = io(url, { auth: { token: 'not-a-valid-token' }, forceNew: true, reconnection: false })

  socket.on('connect_error', (error) => {
    console.error('Connection failed:', error.message)
  })
}

// The client snippets of the system we replace (its "API Reference" and "Error Handling" sections),
// copied as written, on a socket typed with the generated declarations (realtime.d.ts, written next
// to this file by test_contract.py). Compiled with `tsc --strict`; never run.
import { io } from "socket.io-client";
import type { RealtimeSocket } from "./realtime.js";

const socket: RealtimeSocket = io("http://localhost:8000", { auth: { token: "access-token" } });

// ---- snippets: API Reference > Connection Events ---------------------------------------------
// Client connection
socket.on('connect', () => {
  console.log('Connected to WebSocket server')
})

// Connection confirmation
socket.on('connected', (data) => {
  console.log('Connection confirmed:', data)
})

// ---- snippets: Subscription Events -----------------------------------------------------------
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

// ---- snippets: Inventory Events --------------------------------------------------------------
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

// ---- snippets: Order Events ------------------------------------------------------------------
// Order status updates
socket.on('order:updated', (payload) => {
  console.log('Order updated:', payload.data)
})

// ---- snippets: Shopify Events ----------------------------------------------------------------
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

// ---- snippets: Notification Events -----------------------------------------------------------
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

// ---- snippets: Error Handling ----------------------------------------------------------------
socket.on('connect_error', (error) => {
  console.error('Connection failed:', error.message)
})

socket.on('inventory:updateError', (data) => {
  console.error('Inventory update failed:', data.error)
})

socket.on('inventory:reservationError', (data) => {
  console.error('Reservation failed:', data.error)
})

// ---- what the types add (not in the original document) ---------------------------------------
socket.on('inventory:updated', (payload) => {
  const sellable: number = payload.data.sellable
  const user: string | null = payload.data.userId
  console.log(sellable, user, payload.id, payload.timestamp)
  // @ts-expect-error: not a field of inventory:updated
  console.log(payload.data.quantity)
})

socket.on('notification', (payload) => {
  if (payload.type === 'security:alert') {
    const details: Record<string, unknown> = payload.data.details
    console.log(details, payload.data.alert)
  } else if (payload.type === 'user:activity' && payload.data.action === 'login') {
    const who: string = payload.data.username
    console.log(who)
  }
})

socket.on('order:updated', (payload) => {
  const status: 'pending' | 'confirmed' | 'processing' | 'shipped' | 'delivered' | 'cancelled' | 'refunded' =
    payload.data.status
  console.log(status, payload.data.changes.status?.from)
})

socket.emit('inventory:reserve', { inventoryItemId: 12, quantity: 2, reason: 'Checkout', requestId: 'r-1' }, (reply) => {
  if (reply.error) {
    console.error(reply.error.code, reply.error.message)
  } else {
    const id: string = reply.data.reservationId
    console.log(id, reply.data.duplicate)
  }
})

socket.emit('subscribe:inventory', { locationIds: [1] }, (reply) => {
  console.log(reply.data?.rooms, reply.data?.refused.map((r) => r.reason))
})

async function refresh(token: string): Promise<number> {
  const reply = await socket.emitWithAck('auth:refresh', { token })
  if (reply.error) throw new Error(reply.error.code)
  return reply.data.expiresAt
}
void refresh

// @ts-expect-error: quantity is required
socket.emit('inventory:update', { inventoryItemId: 'item-123', reason: 'Stock adjustment' })
// @ts-expect-error: no such command
socket.emit('inventory:delete', { inventoryItemId: 'item-123' })
// @ts-expect-error: no such event
socket.on('inventory:deleted', () => {})

using System.Text;
using System.Threading.Channels;
using SleapRtc.Protocol.Logging;

namespace SleapRtc.Signaling.Monitor;

/// <summary>One server-sent event: a per-room sequence number, the event name and its JSON data.</summary>
public sealed record MonitorEvent(long Id, string Name, string DataJson);

/// <summary>
/// Turns the registry's "peer X in room Y changed" notifications into typed monitor events and fans them out to
/// the viewers of that room. Notifications are only queued on the caller's thread (the registry may call while
/// holding its own lock); one background loop reads the directory, compares with the last view sent to the
/// room's viewers and publishes worker_joined / worker_left / status_changed / job_progress / worker_updated.
/// Rooms nobody watches cost nothing beyond the queued notification.
/// </summary>
public sealed class MonitorEventHub : IAsyncDisposable
{
    /// <summary>Events buffered per viewer; a viewer that falls this far behind is dropped and reconnects.</summary>
    internal const int ViewerQueueCapacity = 512;

    private readonly IMonitorRoomDirectory _directory;
    private readonly ILogSink _log;
    /// <summary>Waiting tickets the state document and queue_changed list (the count is always exact).</summary>
    internal const int MaxQueueShown = 100;
    /// <summary>Recent (not waiting) job records the state document carries.</summary>
    internal const int MaxJobsShown = 50;

    private enum Change { Peer, Room, Job, Queue }

    private readonly record struct Notification(string RoomId, Change Kind, string? PeerId = null, SleapRtc.Protocol.Signaling.JobRecord? Job = null);

    private readonly Channel<Notification> _notifications =
        Channel.CreateUnbounded<Notification>(new UnboundedChannelOptions { SingleReader = true });
    private readonly Dictionary<string, WatchedRoom> _rooms = new(StringComparer.Ordinal);
    private readonly object _gate = new();
    private readonly Task _loop;

    public MonitorEventHub(IMonitorRoomDirectory directory, ILogSink? log = null)
    {
        _directory = directory;
        _log = log ?? Log.Null;
        _loop = Task.Run(ProcessNotificationsAsync);
    }

    /// <summary>Called by the registry after a peer registered, left, or had its metadata updated. Never blocks.</summary>
    public void NotifyPeerChanged(string roomId, string peerId) => _notifications.Writer.TryWrite(new Notification(roomId, Change.Peer, peerId));

    /// <summary>Called when many peers of a room may have changed at once (room deleted, bulk cleanup).</summary>
    public void NotifyRoomChanged(string roomId) => _notifications.Writer.TryWrite(new Notification(roomId, Change.Room));

    /// <summary>A job record changed (a copy of it after the change). Never blocks.</summary>
    public void NotifyJobChanged(string roomId, SleapRtc.Protocol.Signaling.JobRecord record) =>
        _notifications.Writer.TryWrite(new Notification(roomId, Change.Job, Job: record));

    /// <summary>The room's queue changed. Never blocks.</summary>
    public void NotifyQueueChanged(string roomId) => _notifications.Writer.TryWrite(new Notification(roomId, Change.Queue));

    /// <summary>The job queue the state document and the job events read (null: a server without one, as in unit tests).</summary>
    internal IMonitorJobSource? Jobs { get; set; }

    /// <summary>
    /// Brings the room's view up to date now rather than when its queued notifications come round: a stream that
    /// is about to end (room deleted) must still carry the worker_left events of that deletion.
    /// </summary>
    public void RefreshNow(string roomId)
    {
        lock (_gate)
        {
            if (_rooms.TryGetValue(roomId, out var room)) RefreshRoom(roomId, room);
        }
    }

    /// <summary>The state document of a room, read straight from the directory.</summary>
    public string BuildStateJson(string roomId) =>
        StateJson(roomId, _directory.ListPeers(roomId).Select(MonitorWorkerView.FromPeer).OfType<MonitorWorkerView>(), QueueJson(roomId));

    /// <summary>
    /// Starts watching a room: the returned viewer's first event is the snapshot, then every change in order.
    /// Taking the snapshot and joining the fan-out happen under one lock, so no change falls between them.
    /// </summary>
    public MonitorViewer Subscribe(string roomId)
    {
        lock (_gate)
        {
            if (!_rooms.TryGetValue(roomId, out var room))
            {
                room = new WatchedRoom();
                foreach (var view in _directory.ListPeers(roomId).Select(MonitorWorkerView.FromPeer).OfType<MonitorWorkerView>())
                {
                    room.Workers[view.PeerId] = view;
                }
                room.QueueJson = QueueJson(roomId);
                _rooms[roomId] = room;
            }
            var viewer = new MonitorViewer(this, roomId);
            viewer.TryEnqueue(new MonitorEvent(room.NextEventId++, "snapshot", StateJson(roomId, room.Workers.Values, room.QueueJson)));
            room.Viewers.Add(viewer);
            return viewer;
        }
    }

    internal void Unsubscribe(MonitorViewer viewer)
    {
        lock (_gate)
        {
            if (!_rooms.TryGetValue(viewer.RoomId, out var room)) return;
            room.Viewers.Remove(viewer);
            if (room.Viewers.Count == 0) _rooms.Remove(viewer.RoomId);
        }
    }

    /// <summary>Number of viewers currently connected to a room (diagnostics and tests).</summary>
    public int ViewerCount(string roomId)
    {
        lock (_gate) return _rooms.TryGetValue(roomId, out var room) ? room.Viewers.Count : 0;
    }

    public async ValueTask DisposeAsync()
    {
        _notifications.Writer.TryComplete();
        await _loop.ConfigureAwait(false);
        lock (_gate)
        {
            foreach (var viewer in _rooms.Values.SelectMany(r => r.Viewers).ToList()) viewer.Complete();
            _rooms.Clear();
        }
    }

    private async Task ProcessNotificationsAsync()
    {
        await foreach (var notification in _notifications.Reader.ReadAllAsync().ConfigureAwait(false))
        {
            var roomId = notification.RoomId;
            try
            {
                lock (_gate)
                {
                    if (!_rooms.TryGetValue(roomId, out var room)) continue;
                    switch (notification.Kind)
                    {
                        case Change.Room: RefreshRoom(roomId, room); break;
                        case Change.Peer:
                            RefreshPeer(room, notification.PeerId!, _directory.FindPeer(roomId, notification.PeerId!) is { } peer ? MonitorWorkerView.FromPeer(peer) : null);
                            break;
                        case Change.Job:
                            Publish(room, "job_changed", $"{{\"job\":{notification.Job!.ToWire()}}}");
                            break;
                        case Change.Queue:
                            var queue = QueueJson(roomId);
                            if (queue == room.QueueJson) break;
                            room.QueueJson = queue;
                            Publish(room, "queue_changed", queue);
                            break;
                    }
                }
            }
            catch (Exception ex)
            {
                // A faulty directory read must not end the loop: later notifications still deserve delivery.
                _log.Write(LogLevel.Warning, "monitor", $"could not refresh the monitor view of a room: {ex.GetType().Name}: {ex.Message}");
            }
        }
    }

    private void RefreshRoom(string roomId, WatchedRoom room)
    {
        var current = _directory.ListPeers(roomId).Select(MonitorWorkerView.FromPeer).OfType<MonitorWorkerView>()
            .ToDictionary(v => v.PeerId, StringComparer.Ordinal);
        foreach (var gone in room.Workers.Keys.Where(id => !current.ContainsKey(id)).ToList()) RefreshPeer(room, gone, null);
        foreach (var view in current.Values) RefreshPeer(room, view.PeerId, view);
    }

    private static void RefreshPeer(WatchedRoom room, string peerId, MonitorWorkerView? now)
    {
        room.Workers.TryGetValue(peerId, out var before);
        if (now is null)
        {
            if (before is null) return;
            room.Workers.Remove(peerId);
            Publish(room, "worker_left", $"{{\"peer_id\":{JsonText(peerId)},\"previous_status\":{JsonText(before.Status)}}}");
            if (before.MachineId is { } left && !room.Workers.Values.Any(w => w.MachineId == left))
                Publish(room, "machine_left", $"{{\"machine_id\":{JsonText(left)},\"peer_id\":{JsonText(peerId)}}}");
            return;
        }
        room.Workers[peerId] = now;
        if (before is null)
        {
            // Several GPU workers of one host share a machine_id: its first worker is the machine starting.
            if (now.MachineId is { } machine && !room.Workers.Values.Any(w => w.PeerId != peerId && w.MachineId == machine))
                Publish(room, "machine_joined", $"{{\"machine_id\":{JsonText(machine)},\"peer_id\":{JsonText(peerId)}}}");
            Publish(room, "worker_joined", $"{{\"peer_id\":{JsonText(peerId)},\"worker\":{now.Json}}}");
            return;
        }
        if (before.Json == now.Json) return;
        var changed = false;
        if (before.Status != now.Status)
        {
            Publish(room, "status_changed",
                $"{{\"peer_id\":{JsonText(peerId)},\"status\":{JsonText(now.Status)},\"previous_status\":{JsonText(before.Status)},\"worker\":{now.Json}}}");
            changed = true;
        }
        if (before.JobJson != now.JobJson)
        {
            Publish(room, "job_progress", $"{{\"peer_id\":{JsonText(peerId)},\"job\":{now.JobJson},\"worker\":{now.Json}}}");
            changed = true;
        }
        if (!changed) Publish(room, "worker_updated", $"{{\"peer_id\":{JsonText(peerId)},\"worker\":{now.Json}}}");
    }

    private static void Publish(WatchedRoom room, string name, string dataJson)
    {
        var monitorEvent = new MonitorEvent(room.NextEventId++, name, dataJson);
        foreach (var viewer in room.Viewers.ToList())
        {
            // A viewer that cannot keep up is cut off rather than slowing the room; its page reconnects and
            // starts again from a fresh snapshot.
            if (!viewer.TryEnqueue(monitorEvent)) viewer.Complete();
        }
    }

    private string StateJson(string roomId, IEnumerable<MonitorWorkerView> workers, string queueJson)
    {
        var text = new StringBuilder(256);
        text.Append("{\"room_id\":").Append(JsonText(roomId)).Append(",\"workers\":[");
        var first = true;
        foreach (var worker in workers.OrderBy(w => w.PeerId, StringComparer.Ordinal))
        {
            if (!first) text.Append(',');
            text.Append(worker.Json);
            first = false;
        }
        text.Append("],\"jobs\":[");
        first = true;
        foreach (var job in Jobs?.RecentJobs(roomId, MaxJobsShown) ?? [])
        {
            if (!first) text.Append(',');
            text.Append(job.ToWire());
            first = false;
        }
        // The queue object ({"queue":[…],"queue_length":n}) is spliced in without its braces.
        return text.Append("],").Append(queueJson, 1, queueJson.Length - 1).ToString();
    }

    /// <summary><c>{"queue":[first waiting tickets],"queue_length":n}</c>: the queue_changed data and part of the state document.</summary>
    private string QueueJson(string roomId)
    {
        var queue = Jobs?.QueueView(roomId, MaxQueueShown) ?? [];
        return $"{{\"queue\":{queue.ToJsonString()},\"queue_length\":{Jobs?.WaitingCount(roomId) ?? 0}}}";
    }

    internal static string JsonText(string value) => System.Text.Json.JsonSerializer.Serialize(value);

    private sealed class WatchedRoom
    {
        public Dictionary<string, MonitorWorkerView> Workers { get; } = new(StringComparer.Ordinal);
        public List<MonitorViewer> Viewers { get; } = new();
        /// <summary>The last queue document sent, so a change that leaves the visible queue as it was sends nothing.</summary>
        public string QueueJson { get; set; } = "";
        public long NextEventId { get; set; } = 1;
    }
}

/// <summary>One open event stream of a room. Dispose it when the connection ends.</summary>
public sealed class MonitorViewer : IDisposable
{
    private readonly MonitorEventHub _hub;
    private readonly Channel<MonitorEvent> _events = Channel.CreateBounded<MonitorEvent>(
        new BoundedChannelOptions(MonitorEventHub.ViewerQueueCapacity) { SingleReader = true, FullMode = BoundedChannelFullMode.Wait });

    internal MonitorViewer(MonitorEventHub hub, string roomId)
    {
        _hub = hub;
        RoomId = roomId;
    }

    public string RoomId { get; }

    /// <summary>The snapshot first, then changes; completes when the viewer is dropped or the hub stops.</summary>
    public ChannelReader<MonitorEvent> Events => _events.Reader;

    internal bool TryEnqueue(MonitorEvent monitorEvent) => _events.Writer.TryWrite(monitorEvent);

    internal void Complete() => _events.Writer.TryComplete();

    public void Dispose()
    {
        Complete();
        _hub.Unsubscribe(this);
    }
}

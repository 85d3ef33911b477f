using System.Text.Json.Nodes;
using SleapRtc.Protocol.Logging;
using SleapRtc.Protocol.Signaling;
using SleapRtc.Signaling.Store;

namespace SleapRtc.Signaling.Jobs;

/// <summary>
/// Sends queue work (events and requests) to the instance that runs the job queue, when that is another instance.
/// Implemented over the Redis bus by instances sharing Redis (<see cref="Cluster.QueueLeadership"/>).
/// </summary>
internal interface IQueueForwarder
{
    /// <summary>Publishes the work for the queue's instance; false when it cannot go out (Redis unreachable).</summary>
    bool Forward(QueueWork work);
}

/// <summary>
/// One piece of queue work as it travels to the instance running the queue: a peer's request (<see cref="Request"/>:
/// its job-queue message), or what the queue must hear of (a peer joined or left, a worker turned available, an offer
/// from a submitter reached a worker).
/// </summary>
internal sealed record QueueWork(string Kind, string Room, string Peer, string? Role = null, string? Other = null, JsonObject? Message = null)
{
    public const string Request = "request";
    public const string Joined = "joined";
    public const string Left = "left";
    public const string Available = "available";
    public const string Offer = "offer";
    public const string Forget = "forget";

    public byte[] ToUtf8()
    {
        var json = new JsonObject { ["k"] = Kind, ["room"] = Room, ["peer"] = Peer };
        if (Role is not null) json["role"] = Role;
        if (Other is not null) json["other"] = Other;
        if (Message is not null) json["m"] = Message.DeepClone();
        return SignalingJson.ToUtf8(json);
    }

    /// <summary>Null when the bytes are not queue work (never trust a bus).</summary>
    public static QueueWork? Parse(byte[] utf8)
    {
        if (SignalingJson.TryParse(System.Text.Encoding.UTF8.GetString(utf8)) is not JsonObject json) return null;
        if (json.GetString("k") is not { } kind || json.GetString("room") is not { } room || json.GetString("peer") is not { } peer) return null;
        return new QueueWork(kind, room, peer, json.GetString("role"), json.GetString("other"), json["m"] as JsonObject);
    }
}

/// <summary>
/// The one way the hub reaches the job queue. A single server runs its queue itself. Instances sharing Redis run one
/// queue between them: the instance holding the queue lease (<see cref="Cluster.QueueLeadership"/>) has it in
/// <see cref="Local"/> and does everything there, for its own peers and for the others', whose work the other instances
/// forward to it over the bus. Answers and pushes go out through the registry, which reaches a peer on any instance.
/// So the queue's rules (one lock per room, atomic reservation, ordering) hold across instances unchanged, and a ticket
/// submitted on any instance runs exactly once. When the instance holding the lease dies, another takes the lease
/// after its expiry and loads the queue from the shared job store (<see cref="Cluster.RedisJobStore"/>); work forwarded
/// meanwhile is lost, and the requests it carried time out at their clients (documented).
/// </summary>
internal sealed class JobQueueRouter : Monitor.IMonitorJobSource, IAsyncDisposable
{
    private readonly IPeerRegistry _peers;
    private readonly ILogSink _log;
    private readonly IQueueForwarder? _forwarder;
    private JobQueue? _local;

    /// <summary>A single server: <paramref name="local"/> is the queue, always.</summary>
    public JobQueueRouter(JobQueue local, IPeerRegistry peers, ILogSink log) : this(peers, log, null) => _local = local;

    /// <summary>An instance of several: no queue until it takes the lease (<see cref="TakeOver"/>).</summary>
    public JobQueueRouter(IPeerRegistry peers, ILogSink log, IQueueForwarder? forwarder)
    {
        _peers = peers;
        _log = log;
        _forwarder = forwarder;
    }

    /// <summary>The queue this instance runs (null while another instance runs it).</summary>
    public JobQueue? Local => Volatile.Read(ref _local);

    /// <summary>This instance now runs the queue; returns the one it replaces (to dispose), if any.</summary>
    public JobQueue? TakeOver(JobQueue queue)
    {
        var previous = Interlocked.Exchange(ref _local, queue);
        queue.AdoptPresentPeers();
        return previous;
    }

    /// <summary>Another instance runs the queue now; returns this instance's (to dispose).</summary>
    public JobQueue? HandOver() => Interlocked.Exchange(ref _local, null);

    /// <summary>Read before a worker's status change is applied (see <see cref="JobQueue.WorkerAvailable"/>).</summary>
    public long AssignmentMark => Local?.AssignmentMark ?? long.MaxValue;

    public void Request(IPeerLink reply, string self, string room, string? role, string type, JsonObject message)
    {
        if (Local is { } queue) JobRequests.Handle(queue, _peers, _log, reply, self, room, role, type, message);
        else Forward(new QueueWork(QueueWork.Request, room, self, role, type, message));
    }

    public void PeerJoined(string room, string peer)
    {
        if (Local is { } queue) queue.PeerJoined(room, peer);
        else Forward(new QueueWork(QueueWork.Joined, room, peer));
    }

    public void PeerLeft(string room, string peer)
    {
        if (Local is { } queue) queue.PeerLeft(room, peer);
        else Forward(new QueueWork(QueueWork.Left, room, peer));
    }

    /// <summary>A forwarded "available" is applied with the queue's mark when it arrives: an assignment made in between
    /// goes back to the queue and is handed out again (to the same worker, now free), never to two workers.</summary>
    public void WorkerAvailable(string room, string worker, long assignmentMark)
    {
        if (Local is { } queue) queue.WorkerAvailable(room, worker, assignmentMark);
        else Forward(new QueueWork(QueueWork.Available, room, worker));
    }

    public void OfferRelayed(string room, string submitter, string worker)
    {
        if (Local is { } queue) queue.OfferRelayed(room, submitter, worker);
        else Forward(new QueueWork(QueueWork.Offer, room, submitter, Other: worker));
    }

    /// <summary>The room was deleted or expired: its job records and tickets go with it, on whichever instance runs the queue.</summary>
    public void ForgetRoom(string room)
    {
        if (Local is { } queue) queue.ForgetRoom(room);
        else Forward(new QueueWork(QueueWork.Forget, room, "-"));
    }

    /// <summary>This instance is stopping: its peers' departures are not departures to the queue it runs.</summary>
    public void ServerStopping() => Local?.ServerStopping();

    /// <summary>Work forwarded by another instance, run here when this instance runs the queue (else dropped: the
    /// instance that does also received it).</summary>
    public void Apply(QueueWork work)
    {
        if (Local is not { } queue) return;
        switch (work.Kind)
        {
            case QueueWork.Request when work.Other is { } type && JobRequests.IsJobMessage(type) && work.Message is { } message:
                // The answer goes through the registry; a peer that left (or moved rooms) meanwhile gets nothing.
                if (_peers.Get(work.Peer) is { } entry && entry.RoomId == work.Room)
                    JobRequests.Handle(queue, _peers, _log, entry.Link, work.Peer, work.Room, work.Role, type, message);
                break;
            case QueueWork.Joined: queue.PeerJoined(work.Room, work.Peer); break;
            case QueueWork.Left: queue.PeerLeft(work.Room, work.Peer); break;
            case QueueWork.Available: queue.WorkerAvailable(work.Room, work.Peer, queue.AssignmentMark); break;
            case QueueWork.Offer when work.Other is { } worker: queue.OfferRelayed(work.Room, work.Peer, worker); break;
            case QueueWork.Forget: queue.ForgetRoom(work.Room); break;
        }
    }

    private void Forward(QueueWork work)
    {
        if (_forwarder?.Forward(work) != true)
            _log.Write(LogLevel.Warning, "jobs", $"Queue work ({work.Kind}) for room {work.Room} could not reach the instance running the queue");
    }

    public System.Text.Json.Nodes.JsonArray QueueView(string roomId, int max) => Local?.QueueView(roomId, max) ?? [];

    public int WaitingCount(string roomId) => Local?.WaitingCount(roomId) ?? 0;

    public IReadOnlyList<JobRecord> RecentJobs(string roomId, int max) => Local?.RecentJobs(roomId, max) ?? [];

    public async ValueTask DisposeAsync()
    {
        if (HandOver() is { } queue) await queue.DisposeAsync().ConfigureAwait(false);
    }
}

using System.Collections.Concurrent;
using System.Text.Json.Nodes;
using SleapRtc.Protocol.Logging;
using SleapRtc.Protocol.Signaling;
using SleapRtc.Signaling.Store;

namespace SleapRtc.Signaling.Jobs;

/// <summary>Hears of every job record change and queue change (the live monitor); calls only queue work, never block.</summary>
public interface IJobQueueObserver
{
    /// <summary>A copy of the record after the change.</summary>
    void JobChanged(string roomId, JobRecord record);

    /// <summary>The room's queue (order, membership) changed.</summary>
    void QueueChanged(string roomId);
}

/// <summary>How a job_cancel ended.</summary>
internal enum CancelOutcome
{
    NotFound,
    /// <summary>A queued ticket: cancelled at once.</summary>
    Cancelled,
    /// <summary>Uploading or running: the request goes to the worker, whose report will say Cancelled.</summary>
    ForwardToWorker,
    /// <summary>Already finished: nothing to do, the record is returned as it is.</summary>
    AlreadyFinished,
}

/// <summary>
/// The room job queue and the job records (issue 12). Live state is in memory, one lock per room; the records are
/// written behind to SQLite (<see cref="JobPersistence"/>) and loaded again at start.
///
/// A ticket is a record in state Queued. While it waits it sits in its room's <see cref="RoomJobs.Waiting"/> set,
/// ordered by priority (high first), then by queue order (FIFO; a ticket put back goes to the head of its
/// priority). Whenever a worker may have become available, <see cref="AssignWaiting"/> walks the waiting tickets
/// in order and, under the room's lock, reserves the first matching candidate worker through the registry (the
/// same reservation a relayed offer takes, so discovery hides it and other offers are refused). The registry's
/// reserve is itself atomic, and a ticket leaves the waiting set under the room lock, so no worker gets two
/// tickets and no ticket goes twice. The assigned ticket stays Queued (with worker_id and assigned_at) until the
/// worker reports it Uploading/Running; meanwhile it is in <see cref="RoomJobs.Active"/>, with the jobs that run.
/// </summary>
internal sealed class JobQueue : IAsyncDisposable, Monitor.IMonitorJobSource
{
    private const string Component = "jobs";
    public const string WorkerDisconnectedReason = "worker disconnected";
    public const string WorkerLostReason = "worker lost";
    public const string SubmitterGoneReason = "submitter gone";
    public const string SubmitterDidNotConnectReason = "submitter did not connect";

    private readonly JobQueueOptions _options;
    private readonly IPeerRegistry _peers;
    private readonly JobPersistence _persistence;
    private readonly ILogSink _log;
    private readonly Func<long> _clock;
    private readonly ConcurrentDictionary<string, RoomJobs> _rooms = new(StringComparer.Ordinal);
    /// <summary>Job id → room, for every record held: job ids are unique across the server.</summary>
    private readonly ConcurrentDictionary<string, string> _jobRooms = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, UpdateBudget> _updateBudgets = new(StringComparer.Ordinal);
    private readonly CancellationTokenSource _stopping = new();
    private readonly Task _sweeper;
    private long _nextOrder = 1;
    private long _headOrder;
    private long _lastRetentionSweep;
    private long _assignments;

    public JobQueue(JobQueueOptions options, IPeerRegistry peers, IJobStore store, ILogSink log, Func<long>? clock = null)
    {
        _options = options;
        _peers = peers;
        _log = log;
        _clock = clock ?? (() => DateTimeOffset.UtcNow.ToUnixTimeMilliseconds());
        Load(store);
        _persistence = new JobPersistence(store, log);
        _sweeper = Task.Run(SweepLoopAsync);
    }

    /// <summary>The live monitor, set once at start.</summary>
    public IJobQueueObserver? Observer { get; set; }

    private sealed class Job(JobRecord record, long order)
    {
        public JobRecord Record { get; } = record;
        public long Order { get; set; } = order;
        /// <summary>While assigned and its submitter has not offered yet: when the assignment lapses.</summary>
        public long? AssignmentDeadline { get; set; }
        public int Retries { get; set; }
        /// <summary>Since when the submitter of a queued ticket has been gone (null while it is registered).</summary>
        public long? SubmitterGoneSince { get; set; }
        /// <summary>For an uploading or running job whose worker is gone (or not yet back after a restart): when it fails, and why.</summary>
        public long? LostDeadline { get; set; }
        public string? LostReason { get; set; }
        public int? PushedPosition { get; set; }
        /// <summary>Which hand-out this is (server-wide count), to tell an assignment from before a status change from one after it.</summary>
        public long AssignmentNumber { get; set; }
        /// <summary>The worker this ticket was assigned to when the server stopped (assignments do not survive a restart):
        /// its submitter may have reached that worker anyway, so that worker's report still counts as the ticket's start.</summary>
        public string? AssignedBeforeRestart { get; set; }

        public bool IsTicket => Record.State == JobStates.Queued;
        public bool IsAssigned => IsTicket && Record.WorkerId is not null;
    }

    private sealed class RoomJobs(string roomId)
    {
        public string RoomId { get; } = roomId;
        public Dictionary<string, Job> Jobs { get; } = new(StringComparer.Ordinal);
        public SortedSet<Job> Waiting { get; } = new(QueueOrder.Instance);
        /// <summary>Assigned tickets and uploading/running jobs.</summary>
        public HashSet<Job> Active { get; } = [];
        public Dictionary<string, int> TicketsBySubmitter { get; } = new(StringComparer.Ordinal);
        public int Finished { get; set; }
        public bool PositionPushScheduled { get; set; }
        public int Tickets => Waiting.Count + Active.Count(j => j.IsAssigned);
    }

    private sealed class QueueOrder : IComparer<Job>
    {
        public static readonly QueueOrder Instance = new();

        public int Compare(Job? x, Job? y)
        {
            if (ReferenceEquals(x, y)) return 0;
            var byPriority = y!.Record.Priority.CompareTo(x!.Record.Priority);
            if (byPriority != 0) return byPriority;
            var byOrder = x.Order.CompareTo(y.Order);
            return byOrder != 0 ? byOrder : string.CompareOrdinal(x.Record.JobId, y.Record.JobId);
        }
    }

    /// <summary>Messages to send once the room lock is released.</summary>
    private sealed class Outbox
    {
        private readonly List<(string PeerId, byte[] Frame)> _messages = [];

        public void Add(string? peerId, JsonObject message)
        {
            if (peerId is not null) _messages.Add((peerId, SignalingJson.ToUtf8(message)));
        }

        public void Send(IPeerRegistry peers)
        {
            foreach (var (peerId, frame) in _messages) peers.Get(peerId)?.Link.TrySendUtf8(frame);
        }
    }

    // ---------------------------------------------------------------- start

    private void Load(IJobStore store)
    {
        var now = _clock();
        var loaded = store.LoadAll();
        foreach (var stored in loaded)
        {
            var record = stored.Record;
            if (string.IsNullOrEmpty(record.RoomId) || JobStates.Normalize(record.State) is not { } state) continue;
            record.State = state;
            record.Position = null;
            var job = new Job(record, stored.QueueOrder);
            var room = Room(record.RoomId);
            room.Jobs[record.JobId] = job;
            _jobRooms[record.JobId] = record.RoomId;
            _nextOrder = Math.Max(_nextOrder, stored.QueueOrder + 1);
            _headOrder = Math.Min(_headOrder, stored.QueueOrder);
            if (JobStates.IsFinished(state))
            {
                room.Finished++;
            }
            else if (state == JobStates.Queued)
            {
                // Reservations do not survive a restart: an assigned ticket waits again, in its old place. Its submitter
                // must register again within the grace, like after any disconnect.
                job.AssignedBeforeRestart = record.WorkerId;
                record.WorkerId = null;
                record.AssignedAt = null;
                job.SubmitterGoneSince = now;
                room.Waiting.Add(job);
                CountTicket(room, job, +1);
            }
            else
            {
                job.LostDeadline = now + (long)_options.RecoveryGrace.TotalMilliseconds;
                job.LostReason = WorkerLostReason;
                room.Active.Add(job);
            }
        }
        if (loaded.Count > 0) _log.Write(LogLevel.Information, Component, $"Loaded {loaded.Count} job record(s) from the store");
    }

    /// <summary>
    /// After taking over a queue loaded from the shared store (several instances: the instance that ran it died or
    /// handed it over), the peers the load took for gone may still be connected, to another instance: their submitters'
    /// tickets wait for them again and their workers' jobs are not lost. Then waiting tickets are handed out.
    /// </summary>
    public void AdoptPresentPeers()
    {
        foreach (var room in _rooms.Values)
        {
            lock (room)
            {
                foreach (var job in room.Jobs.Values)
                {
                    if (job.IsTicket && job.SubmitterGoneSince is not null && IsPresent(room.RoomId, job.Record.Submitter))
                        job.SubmitterGoneSince = null;
                    else if (!job.IsTicket && job.LostDeadline is not null && !JobStates.IsFinished(job.Record.State) && IsPresent(room.RoomId, job.Record.WorkerId))
                        (job.LostDeadline, job.LostReason) = (null, null);
                }
            }
            AssignWaiting(room.RoomId);
        }
    }

    private bool IsPresent(string roomId, string? peerId) => peerId is not null && _peers.Get(peerId) is { } peer && peer.RoomId == roomId;

    private RoomJobs Room(string roomId) => _rooms.GetOrAdd(roomId, id => new RoomJobs(id));

    /// <summary>Runs <paramref name="action"/> under the room's lock, creating the room's jobs if needed; should the sweep
    /// drop an empty room between the look-up and the lock, the room is taken anew.</summary>
    private T InRoom<T>(string roomId, Func<RoomJobs, T> action)
    {
        while (true)
        {
            var room = Room(roomId);
            lock (room)
            {
                if (_rooms.TryGetValue(roomId, out var current) && ReferenceEquals(current, room)) return action(room);
            }
        }
    }

    // ---------------------------------------------------------------- client requests

    /// <summary>Adds a ticket (already validated by <see cref="JobInput.ReadTicket"/>); returns its record with its position, or the reason it is refused.
    /// The caller answers, then calls <see cref="AssignWaiting"/> so the answer reaches the submitter before any assignment.</summary>
    public JobRecord? Submit(string roomId, string submitter, JobRecord ticket, out string problem)
    {
        var (record, why) = InRoom(roomId, room => SubmitLocked(room, submitter, ticket));
        problem = why;
        return record;
    }

    private (JobRecord?, string) SubmitLocked(RoomJobs room, string submitter, JobRecord ticket)
    {
        var roomId = room.RoomId;
        {
            if (_jobRooms.ContainsKey(ticket.JobId)) return (null, $"Job id {ticket.JobId} is already in use; submit with a new one.");
            if (room.Tickets >= _options.MaxQueuedPerRoom)
                return (null, $"The room's queue is full ({_options.MaxQueuedPerRoom} tickets); wait for some to start or cancel some.");
            if (room.TicketsBySubmitter.GetValueOrDefault(submitter) >= _options.MaxQueuedPerSubmitter)
                return (null, $"You already have {_options.MaxQueuedPerSubmitter} tickets queued in this room; wait for some to start or cancel some.");
            var record = ticket.Clone();
            record.RoomId = roomId;
            record.Submitter = submitter;
            record.State = JobStates.Queued;
            record.WorkerId = null;
            record.CreatedAt = _clock();
            var job = new Job(record, Interlocked.Increment(ref _nextOrder));
            room.Jobs[record.JobId] = job;
            _jobRooms[record.JobId] = roomId;
            room.Waiting.Add(job);
            CountTicket(room, job, +1);
            Changed(room, job);
            QueueChanged(room);
            var answer = record.Clone();
            answer.Position = PositionOf(room, job);
            job.PushedPosition = answer.Position;
            _log.Write(LogLevel.Information, Component, $"Ticket {record.JobId} queued in room {roomId} by {submitter} (priority {record.Priority}, position {answer.Position})");
            return (answer, "");
        }
    }

    /// <summary>The room's records, newest first, narrowed by job id and state; queued tickets carry their position.</summary>
    public IReadOnlyList<JobRecord> List(string roomId, string? jobId, string? state)
    {
        if (!_rooms.TryGetValue(roomId, out var room)) return [];
        lock (room)
        {
            var positions = Positions(room);
            IEnumerable<Job> jobs = jobId is not null
                ? room.Jobs.TryGetValue(jobId, out var one) ? [one] : []
                : room.Jobs.Values;
            if (state is not null) jobs = jobs.Where(j => j.Record.State == state);
            return jobs.OrderByDescending(j => j.Record.CreatedAt).ThenByDescending(j => j.Order).Take(_options.MaxListedJobs)
                .Select(j =>
                {
                    var copy = j.Record.Clone();
                    copy.Position = positions.TryGetValue(j, out var p) ? p : null;
                    return copy;
                }).ToList();
        }
    }

    /// <summary>A job_cancel: queued tickets end at once; running jobs are for the worker to stop (<paramref name="worker"/> says which).</summary>
    public CancelOutcome Cancel(string roomId, string jobId, string requestedBy, out JobRecord? record, out string? worker)
    {
        record = null;
        worker = null;
        if (!_rooms.TryGetValue(roomId, out var room)) return CancelOutcome.NotFound;
        CancelOutcome outcome;
        lock (room)
        {
            if (!room.Jobs.TryGetValue(jobId, out var job)) return CancelOutcome.NotFound;
            if (JobStates.IsFinished(job.Record.State)) outcome = CancelOutcome.AlreadyFinished;
            else if (job.IsTicket)
            {
                if (job.IsAssigned) _peers.ReleaseReservation(job.Record.WorkerId!, job.Record.Submitter!);
                Finish(room, job, JobStates.Cancelled, $"cancelled by {requestedBy}");
                outcome = CancelOutcome.Cancelled;
            }
            else
            {
                worker = job.Record.WorkerId;
                outcome = CancelOutcome.ForwardToWorker;
            }
            record = job.Record.Clone();
        }
        if (outcome == CancelOutcome.Cancelled)
        {
            _log.Write(LogLevel.Information, Component, $"Ticket {jobId} in room {roomId} cancelled by {requestedBy}");
            AssignWaiting(roomId);
        }
        return outcome;
    }

    // ---------------------------------------------------------------- assignment

    /// <summary>Hands waiting tickets of the room to candidate workers (see the class summary). Safe to call any time, from any thread.</summary>
    public void AssignWaiting(string roomId)
    {
        if (!_rooms.TryGetValue(roomId, out var room)) return;
        var outbox = new Outbox();
        lock (room)
        {
            if (room.Waiting.Count == 0) return;
            var candidates = _peers.QueueCandidates(roomId).ToList();
            if (candidates.Count == 0) return;
            var assigned = new List<Job>();
            foreach (var job in room.Waiting)
            {
                // A ticket whose submitter is away waits: nobody would offer to the worker.
                if (job.SubmitterGoneSince is not null) continue;
                for (var i = 0; i < candidates.Count; i++)
                {
                    var worker = candidates[i];
                    if (!Matches(job.Record, worker)) continue;
                    candidates.RemoveAt(i);
                    if (!_peers.TryReserveForTicket(worker.PeerId, job.Record.Submitter!, roomId))
                    {
                        // Another client's offer reached it first: try the ticket's next candidate.
                        i--;
                        continue;
                    }
                    assigned.Add(job);
                    job.Record.WorkerId = worker.PeerId;
                    job.AssignmentNumber = Interlocked.Increment(ref _assignments);
                    job.Record.AssignedAt = _clock();
                    job.AssignmentDeadline = job.Record.AssignedAt + (long)_options.AssignmentTimeout.TotalMilliseconds;
                    outbox.Add(job.Record.Submitter, new JsonObject
                    {
                        ["type"] = JobQueueMessages.Assigned, ["job_id"] = job.Record.JobId, ["worker_id"] = worker.PeerId,
                    });
                    break;
                }
                if (candidates.Count == 0) break;
            }
            foreach (var job in assigned)
            {
                room.Waiting.Remove(job);
                room.Active.Add(job);
                job.PushedPosition = null;
                Changed(room, job);
                _log.Write(LogLevel.Information, Component, $"Ticket {job.Record.JobId} assigned to worker {job.Record.WorkerId} in room {roomId}");
            }
            if (assigned.Count > 0) QueueChanged(room);
            // Still under the lock (sending only queues the frame): a submitter hears its assignments in hand-out order.
            outbox.Send(_peers);
        }
    }

    private static bool Matches(JobRecord ticket, QueueCandidate worker)
    {
        if (ticket.Requirements is not { } needs) return true;
        if (needs.WorkerId is { } pinned && pinned != worker.PeerId) return false;
        if (needs.MinGpuMemoryMb > 0 && worker.GpuMemoryMb < needs.MinGpuMemoryMb) return false;
        foreach (var tag in needs.Tags ?? [])
        {
            if (!worker.Tags.Contains(tag, StringComparer.Ordinal)) return false;
        }
        return true;
    }

    /// <summary>An offer from <paramref name="submitter"/> reached <paramref name="worker"/>: its assignment no longer times out.</summary>
    public void OfferRelayed(string roomId, string submitter, string worker)
    {
        if (!_rooms.TryGetValue(roomId, out var room)) return;
        lock (room)
        {
            foreach (var job in room.Active)
            {
                if (job.IsAssigned && job.AssignmentDeadline is not null && job.Record.WorkerId == worker && job.Record.Submitter == submitter)
                {
                    job.AssignmentDeadline = null;
                    return;
                }
            }
        }
    }

    /// <summary>Read before a worker's status change is applied; see <see cref="WorkerAvailable"/>.</summary>
    public long AssignmentMark => Interlocked.Read(ref _assignments);

    /// <summary>
    /// The worker published status "available": an assignment it got up to <paramref name="assignmentMark"/> and never started
    /// is over (its reservation ended with that status) and goes back to the queue; then the worker may take the next ticket.
    /// The mark matters: between the registry applying the status and this call, another thread may already have handed the
    /// worker a new ticket, which must stay.
    /// </summary>
    public void WorkerAvailable(string roomId, string worker, long assignmentMark)
    {
        if (_rooms.TryGetValue(roomId, out var room))
        {
            lock (room)
            {
                foreach (var job in room.Active.Where(j => j.IsAssigned && j.Record.WorkerId == worker && j.AssignmentNumber <= assignmentMark).ToList())
                    Requeue(room, job);
            }
        }
        AssignWaiting(roomId);
    }

    // ---------------------------------------------------------------- peers coming and going

    /// <summary>A peer registered: a returning submitter's tickets wait for it again (and it hears their positions); a worker may take one.</summary>
    public void PeerJoined(string roomId, string peerId)
    {
        if (!_rooms.TryGetValue(roomId, out var room)) return;
        var returned = false;
        lock (room)
        {
            foreach (var job in room.Waiting)
            {
                if (job.Record.Submitter != peerId) continue;
                job.SubmitterGoneSince = null;
                job.PushedPosition = null;
                returned = true;
            }
            if (returned) SchedulePositionPush(room);
        }
        AssignWaiting(roomId);
    }

    /// <summary>
    /// The server is stopping: the connections it closes now are not peers leaving. What the queue holds is written as it
    /// stands (an assignment keeps its worker in the store), so the next start knows which worker an assigned ticket went to.
    /// </summary>
    public void ServerStopping() => Volatile.Write(ref _serverStopping, true);

    private bool _serverStopping;

    /// <summary>A peer's connection ended (its registration is gone, and with it every reservation it held or was under).</summary>
    public void PeerLeft(string roomId, string peerId)
    {
        _updateBudgets.TryRemove(peerId, out _);
        if (Volatile.Read(ref _serverStopping)) return;
        if (!_rooms.TryGetValue(roomId, out var room)) return;
        var now = _clock();
        var requeued = false;
        lock (room)
        {
            foreach (var job in room.Waiting)
            {
                if (job.Record.Submitter == peerId) job.SubmitterGoneSince ??= now;
            }
            foreach (var job in room.Active.ToList())
            {
                if (job.IsAssigned && (job.Record.Submitter == peerId || job.Record.WorkerId == peerId))
                {
                    Requeue(room, job);
                    if (job.Record.Submitter == peerId) job.SubmitterGoneSince = now;
                    requeued = true;
                }
                else if (!job.IsTicket && job.Record.WorkerId == peerId && job.LostDeadline is null)
                {
                    job.LostDeadline = now + (long)_options.WorkerLostGrace.TotalMilliseconds;
                    job.LostReason = WorkerDisconnectedReason;
                }
            }
        }
        if (requeued) AssignWaiting(roomId);
    }

    // ---------------------------------------------------------------- worker reports

    /// <summary>
    /// A job_update from a worker (the caller checked the role). Applies what a worker may set to its own record, or
    /// creates the record of a direct (unqueued) job; ignores anything else. Returns why it was ignored, or null.
    /// </summary>
    public string? WorkerReport(string roomId, string worker, JobRecord report) => InRoom(roomId, room => ReportLocked(room, worker, report));

    private string? ReportLocked(RoomJobs room, string worker, JobRecord report)
    {
        var roomId = room.RoomId;
        {
            room.Jobs.TryGetValue(report.JobId, out var job);
            if (job is null && _jobRooms.ContainsKey(report.JobId)) return "the job belongs to another room";
            if (job is not null && job.Record.WorkerId != worker && !TakeOverRestoredAssignment(room, job, worker, report)) return "the job is not this worker's";
            // A state change of a job the server knows is bounded by the forward-only rule (a few per job), so it is never
            // held back; progress, result updates and new direct jobs are what a worker could repeat without end.
            var bounded = job is not null && job.Record.State != report.State;
            if (!bounded && !SpendUpdate(worker)) return "too many job updates";

            if (job is null)
            {
                if (room.Active.Count(j => j.Record.WorkerId == worker) >= _options.MaxActiveJobsPerWorker) return "the worker holds too many unfinished jobs";
                var record = new JobRecord
                {
                    JobId = report.JobId, RoomId = roomId, Kind = report.Kind, State = JobStates.Queued, WorkerId = worker, CreatedAt = _clock(),
                    Overrides = report.Overrides,
                };
                job = new Job(record, 0);
                room.Jobs[record.JobId] = job;
                _jobRooms[record.JobId] = roomId;
                room.Active.Add(job);
            }
            if (!Apply(room, job, report)) return $"a {job.Record.State} job cannot become {report.State}";
            Changed(room, job);
        }
        return null;
    }

    /// <summary>
    /// The window a restart leaves: a ticket was assigned to <paramref name="worker"/>, the server restarted before the
    /// worker reported the upload, and the ticket came back waiting (or was assigned anew once its submitter returned).
    /// The submitter still uploads to the worker it was first told (it takes one assignment per ticket), so that worker's
    /// report is the ticket's start: the record follows it, and a newer assignment's reservation is released unused.
    /// Nothing runs twice: the submitter never connects to the second worker, and the ticket leaves the queue here.
    /// </summary>
    private bool TakeOverRestoredAssignment(RoomJobs room, Job job, string worker, JobRecord report)
    {
        if (job.AssignedBeforeRestart != worker || !job.IsTicket || Rank(report.State) == 0) return false;
        if (job.IsAssigned)
        {
            _peers.ReleaseReservation(job.Record.WorkerId!, job.Record.Submitter!);
            job.AssignmentDeadline = null;
        }
        else
        {
            room.Waiting.Remove(job);
            room.Active.Add(job);
            QueueChanged(room);
        }
        _log.Write(LogLevel.Information, Component, $"Ticket {job.Record.JobId} in room {room.RoomId} started on worker {worker}, which it was assigned to before the restart");
        job.Record.WorkerId = worker;
        job.Record.AssignedAt ??= _clock();
        job.AssignedBeforeRestart = null;
        return true;
    }

    /// <summary>The transition rules: forward only (Queued, Uploading, Running, then one finished state), except that a job
    /// the server failed because its worker went away may be re-reported by that worker once it is back.</summary>
    private bool Apply(RoomJobs room, Job job, JobRecord report)
    {
        var record = job.Record;
        var now = _clock();
        var wasFinished = JobStates.IsFinished(record.State);
        if (wasFinished)
        {
            var serverFailed = record.State == JobStates.Failed && record.Error is WorkerLostReason or WorkerDisconnectedReason;
            if (report.State == record.State)
            {
                // A finished job's results may be collected or expire later.
                record.ResultsAvailable = report.ResultsAvailable;
                record.ResultsExpireAt = report.ResultsExpireAt;
                return true;
            }
            if (!serverFailed) return false;
            room.Finished--;
            record.FinishedAt = null;
            record.Error = null;
            room.Active.Add(job);
        }
        else if (Rank(report.State) < Rank(record.State))
        {
            return false;
        }

        if (job.IsTicket)
        {
            // The ticket has started: it leaves the queue's counts.
            CountTicket(room, job, -1);
            job.AssignmentDeadline = null;
        }
        job.LostDeadline = null;
        job.LostReason = null;
        record.State = report.State;
        if (report.Progress is not null) record.Progress = report.Progress;
        if (report.MachineId is not null) record.MachineId = report.MachineId;
        record.PackageName ??= report.PackageName;
        record.PackageSha256 ??= report.PackageSha256;
        record.ChannelAuth ??= report.ChannelAuth;
        if (record.PackageBytes == 0) record.PackageBytes = report.PackageBytes;
        record.ResultsAvailable = report.ResultsAvailable;
        record.ResultsExpireAt = report.ResultsExpireAt;
        record.StartedAt ??= Plausible(report.StartedAt, now) ?? now;
        if (JobStates.IsFinished(report.State))
        {
            record.Error = report.Error;
            record.FinishedAt = Plausible(report.FinishedAt, now) ?? now;
            room.Active.Remove(job);
            room.Finished++;
        }
        return true;
    }

    private static int Rank(string state) => state switch
    {
        JobStates.Queued => 0,
        JobStates.Uploading => 1,
        JobStates.Running => 2,
        _ => 3,
    };

    /// <summary>A worker's own time stamp when it is not in the future and not absurdly old (clocks of lab machines drift a little).</summary>
    private static long? Plausible(long? at, long now) => at is { } t && t <= now + 60_000 && t > now - 366L * 24 * 3600 * 1000 ? t : null;

    private sealed class UpdateBudget(double tokens)
    {
        public double Tokens = tokens;
        public long CheckedAt = Environment.TickCount64;
    }

    /// <summary>One token per progress update, result update or new direct job, refilled at UpdatesPerSecond up to UpdateBurst.</summary>
    private bool SpendUpdate(string worker)
    {
        var budget = _updateBudgets.GetOrAdd(worker, _ => new UpdateBudget(_options.UpdateBurst));
        lock (budget)
        {
            var now = Environment.TickCount64;
            budget.Tokens = Math.Min(_options.UpdateBurst, budget.Tokens + (now - budget.CheckedAt) * _options.UpdatesPerSecond / 1000);
            budget.CheckedAt = now;
            if (budget.Tokens < 1) return false;
            budget.Tokens -= 1;
            return true;
        }
    }

    // ---------------------------------------------------------------- timeouts and retention

    private async Task SweepLoopAsync()
    {
        if (_options.SweepInterval <= TimeSpan.Zero) return;
        using var timer = new PeriodicTimer(_options.SweepInterval);
        try
        {
            while (await timer.WaitForNextTickAsync(_stopping.Token).ConfigureAwait(false))
            {
                try { Sweep(); }
                catch (Exception e) { _log.Write(LogLevel.Error, Component, $"Job sweep failed: {e.GetType().Name}: {e.Message}"); }
            }
        }
        catch (OperationCanceledException) { }
    }

    /// <summary>
    /// The room was deleted or expired: every record and ticket of it goes, from memory and from the store, at once
    /// (without the room nobody can list, collect or run them, so keeping them to age out only holds a dead queue).
    /// Returns how many went.
    /// </summary>
    public int ForgetRoom(string roomId)
    {
        if (!_rooms.TryGetValue(roomId, out var room)) return 0;
        int forgotten;
        lock (room)
        {
            forgotten = room.Jobs.Count;
            foreach (var job in room.Jobs.Values)
            {
                if (job.IsAssigned) _peers.ReleaseReservation(job.Record.WorkerId!, job.Record.Submitter!);
                _jobRooms.TryRemove(job.Record.JobId, out _);
                _persistence.Delete(job.Record.JobId);
            }
            room.Jobs.Clear();
            room.Waiting.Clear();
            room.Active.Clear();
            room.TicketsBySubmitter.Clear();
            room.Finished = 0;
            // Under the room's lock, as the sweep does, so InRoom never works on the dropped room.
            ((ICollection<KeyValuePair<string, RoomJobs>>)_rooms).Remove(new KeyValuePair<string, RoomJobs>(roomId, room));
        }
        if (forgotten > 0) _log.Write(LogLevel.Information, Component, $"Room {roomId} is gone: dropped its {forgotten} job record(s) and ticket(s)");
        return forgotten;
    }

    /// <summary>Lapsed assignments, lost workers, departed submitters, retention; then another look for assignments.</summary>
    internal void Sweep()
    {
        var now = _clock();
        var retention = now - _lastRetentionSweep >= 60_000;
        if (retention) _lastRetentionSweep = now;
        foreach (var room in _rooms.Values)
        {
            lock (room)
            {
                foreach (var job in room.Active.ToList())
                {
                    if (job.IsAssigned && job.AssignmentDeadline < now)
                    {
                        _peers.ReleaseReservation(job.Record.WorkerId!, job.Record.Submitter!);
                        if (++job.Retries > _options.MaxAssignmentRetries) Finish(room, job, JobStates.Failed, SubmitterDidNotConnectReason);
                        else Requeue(room, job);
                    }
                    else if (job.LostDeadline < now)
                    {
                        _log.Write(LogLevel.Warning, Component, $"Job {job.Record.JobId} in room {room.RoomId} failed: {job.LostReason}");
                        Finish(room, job, JobStates.Failed, job.LostReason ?? WorkerLostReason);
                    }
                }
                var graceMs = (long)_options.SubmitterGrace.TotalMilliseconds;
                foreach (var job in room.Waiting.Where(j => j.SubmitterGoneSince + graceMs < now).ToList())
                {
                    _log.Write(LogLevel.Information, Component, $"Ticket {job.Record.JobId} in room {room.RoomId} cancelled: its submitter did not come back");
                    Finish(room, job, JobStates.Cancelled, SubmitterGoneReason);
                }
                if (retention || room.Finished > _options.MaxFinishedPerRoom) ApplyRetention(room, now);
                // Under the room's lock, so InRoom (which re-checks after locking) never works on a dropped room.
                if (room.Jobs.Count == 0) ((ICollection<KeyValuePair<string, RoomJobs>>)_rooms).Remove(new KeyValuePair<string, RoomJobs>(room.RoomId, room));
            }
            AssignWaiting(room.RoomId);
        }
    }

    private void ApplyRetention(RoomJobs room, long now)
    {
        var oldest = now - (long)_options.FinishedRetention.TotalMilliseconds;
        var finished = room.Jobs.Values.Where(j => JobStates.IsFinished(j.Record.State)).OrderBy(j => j.Record.FinishedAt ?? 0).ToList();
        var excess = finished.Count - _options.MaxFinishedPerRoom;
        foreach (var job in finished)
        {
            if (excess <= 0 && (job.Record.FinishedAt ?? 0) >= oldest) break;
            excess--;
            room.Jobs.Remove(job.Record.JobId);
            _jobRooms.TryRemove(job.Record.JobId, out _);
            room.Finished--;
            _persistence.Delete(job.Record.JobId);
        }
    }

    // ---------------------------------------------------------------- state changes (under the room lock)

    private void Requeue(RoomJobs room, Job job)
    {
        _log.Write(LogLevel.Information, Component, $"Ticket {job.Record.JobId} in room {room.RoomId} goes back to the head of its priority (worker {job.Record.WorkerId} was not used)");
        room.Active.Remove(job);
        job.Record.WorkerId = null;
        job.Record.AssignedAt = null;
        job.AssignmentDeadline = null;
        job.PushedPosition = null;
        job.Order = Interlocked.Decrement(ref _headOrder);
        room.Waiting.Add(job);
        Changed(room, job);
        QueueChanged(room);
    }

    private void Finish(RoomJobs room, Job job, string state, string? error)
    {
        if (job.IsTicket)
        {
            CountTicket(room, job, -1);
            if (room.Waiting.Remove(job)) QueueChanged(room);
        }
        room.Active.Remove(job);
        job.AssignmentDeadline = null;
        job.LostDeadline = null;
        job.Record.State = state;
        job.Record.Error = error;
        job.Record.FinishedAt = _clock();
        room.Finished++;
        Changed(room, job);
    }

    private static void CountTicket(RoomJobs room, Job job, int delta)
    {
        var submitter = job.Record.Submitter;
        if (submitter is null) return;
        var count = room.TicketsBySubmitter.GetValueOrDefault(submitter) + delta;
        if (count > 0) room.TicketsBySubmitter[submitter] = count;
        else room.TicketsBySubmitter.Remove(submitter);
    }

    private void Changed(RoomJobs room, Job job)
    {
        var copy = job.Record.Clone();
        copy.Position = null;
        _persistence.Save(new StoredJob(copy, job.Order));
        Observer?.JobChanged(room.RoomId, copy);
    }

    private void QueueChanged(RoomJobs room)
    {
        SchedulePositionPush(room);
        Observer?.QueueChanged(room.RoomId);
    }

    // ---------------------------------------------------------------- positions

    private static Dictionary<Job, int> Positions(RoomJobs room)
    {
        var positions = new Dictionary<Job, int>(room.Waiting.Count);
        var rank = 1;
        foreach (var job in room.Waiting) positions[job] = rank++;
        return positions;
    }

    private static int PositionOf(RoomJobs room, Job job)
    {
        var rank = 1;
        foreach (var waiting in room.Waiting)
        {
            if (ReferenceEquals(waiting, job)) return rank;
            rank++;
        }
        return 0;
    }

    /// <summary>Positions are pushed a moment after a change, all at once: one hand-out in a queue of thousands moves every
    /// ticket, and a burst of hand-outs should cost one push per ticket, not one per hand-out.</summary>
    private void SchedulePositionPush(RoomJobs room)
    {
        if (room.PositionPushScheduled) return;
        room.PositionPushScheduled = true;
        _ = Task.Delay(_options.PositionPushDelay, _stopping.Token).ContinueWith(_ => PushPositions(room), TaskScheduler.Default);
    }

    private void PushPositions(RoomJobs room)
    {
        var outbox = new Outbox();
        lock (room)
        {
            room.PositionPushScheduled = false;
            var rank = 1;
            foreach (var job in room.Waiting)
            {
                var position = rank++;
                if (job.PushedPosition == position || job.SubmitterGoneSince is not null) continue;
                job.PushedPosition = position;
                outbox.Add(job.Record.Submitter, new JsonObject { ["type"] = JobQueueMessages.Position, ["job_id"] = job.Record.JobId, ["position"] = position });
            }
        }
        outbox.Send(_peers);
    }

    // ---------------------------------------------------------------- monitor

    /// <summary>The room's waiting tickets in order (at most <paramref name="max"/>), as the monitor shows them.</summary>
    public JsonArray QueueView(string roomId, int max)
    {
        var queue = new JsonArray();
        if (!_rooms.TryGetValue(roomId, out var room)) return queue;
        lock (room)
        {
            var rank = 1;
            foreach (var job in room.Waiting.Take(max))
            {
                var record = job.Record;
                queue.Add(new JsonObject
                {
                    ["job_id"] = record.JobId, ["position"] = rank++, ["priority"] = record.Priority, ["package_name"] = record.PackageName,
                    ["submitter"] = record.Submitter, ["created_at"] = record.CreatedAt, ["submitter_present"] = job.SubmitterGoneSince is null,
                    ["requirements"] = record.Requirements is null ? null : record.ToJson()["requirements"]?.DeepClone(),
                });
            }
        }
        return queue;
    }

    /// <summary>The room's jobs that are not waiting (assigned, running, finished), newest first.</summary>
    public IReadOnlyList<JobRecord> RecentJobs(string roomId, int max)
    {
        if (!_rooms.TryGetValue(roomId, out var room)) return [];
        lock (room)
        {
            return room.Jobs.Values.Where(j => !room.Waiting.Contains(j)).OrderByDescending(j => j.Record.CreatedAt).ThenByDescending(j => j.Order)
                .Take(max).Select(j => j.Record.Clone()).ToList();
        }
    }

    /// <summary>Number of waiting tickets in the room (tests, monitor).</summary>
    public int WaitingCount(string roomId)
    {
        if (!_rooms.TryGetValue(roomId, out var room)) return 0;
        lock (room) return room.Waiting.Count;
    }

    public async ValueTask DisposeAsync()
    {
        _stopping.Cancel();
        await _sweeper.ConfigureAwait(false);
        await _persistence.DisposeAsync().ConfigureAwait(false);
    }
}

using SleapRtc.Protocol.Jobs;
using SleapRtc.Protocol.Logging;
using SleapRtc.Protocol.Signaling;
using SleapRtc.Signaling.Client;
using SleapRtc.WebRtc;
using SleapRtc.Worker.Jobs;

namespace SleapRtc.Worker;

// Jobs that outlive their client (issue 12): kept results and their retention, collections beside a running job,
// cancel requests from the server, and the job reports (JobReporter).
public sealed partial class WorkerHost
{
    private static readonly TimeSpan CollectHelloTimeout = TimeSpan.FromSeconds(20);

    private JobResultStore _results = null!;
    private JobReporter _reporter = null!;
    private SemaphoreSlim _collections = null!;
    private Timer? _retentionSweep;

    /// <summary>The finished jobs' results this worker keeps for collection.</summary>
    public JobResultStore Results => _results;

    /// <summary>A collection ended (job id, how).</summary>
    public event Action<string?, CollectionEnd>? CollectionCompleted;

    private void AttachJobs(JobResultStore results)
    {
        _results = results;
        _reporter = new JobReporter(_signaling, _options.MachineId, _log);
        _collections = new SemaphoreSlim(Math.Max(1, _options.MaxConcurrentCollections));
        _results.Removed += OnResultsRemoved;
        _signaling.JobCancelRequested += OnJobCancelRequested;
        _retentionSweep = new Timer(_ => _results.Enforce(DateTimeOffset.UtcNow), null, _options.ResultSweepInterval, _options.ResultSweepInterval);
    }

    private void DetachJobs()
    {
        _retentionSweep?.Dispose();
        _signaling.JobCancelRequested -= OnJobCancelRequested;
        _results.Removed -= OnResultsRemoved;
        // The folders stay: a worker started later in the same working directory adopts them.
        _results.Dispose();
    }

    /// <summary>Opens the store in the working directory and adopts what a stopped worker left there.</summary>
    private static JobResultStore OpenResults(string jobs, WorkerOptions options)
    {
        var store = new JobResultStore(jobs, options.ResultRetention, options.ResultQuotaBytes, options.Log);
        store.LoadExisting();
        return store;
    }

    private static bool IsCollectOffer(SdpMessage offer) => offer.Raw.GetString(JobQueueMessages.OfferPurposeKey) == JobQueueMessages.CollectPurpose;

    private bool IsJobIdInUse(string jobId)
    {
        if (_results.Contains(jobId)) return true;
        lock (_gate) if (_session?.JobId == jobId) return true;
        return _spaceRequests.Keys.Any(s => s.JobId == jobId);
    }

    private void WireJobReports(WorkerJobSession session)
    {
        session.StateChanged += _reporter.ReportState;
        session.ProgressChanged += progress => _reporter.ReportProgress(session.JobId, progress);
    }

    /// <summary>job_cancel forwarded by the server (issue 12).</summary>
    private void OnJobCancelRequested(JobCancelRequest request)
    {
        Note($"Job {request.JobId}: cancel requested by {request.RequestedBy ?? "the server"}{(request.KeepCheckpoint ? " (keep checkpoint)" : "")}");
        if (!CancelJob(request.JobId, request.KeepCheckpoint))
            _log.Write(LogLevel.Information, Component, $"job_cancel for {request.JobId}, which does not run here; ignored");
    }

    /// <summary>
    /// Stops the running job <paramref name="jobId"/>: with <paramref name="keepCheckpoint"/> the trainer stops early and its best
    /// checkpoint so far becomes the job's result (state Cancelled, results kept); otherwise it is killed and nothing is kept.
    /// </summary>
    /// <returns>False when no job of that id runs here.</returns>
    public bool CancelJob(string jobId, bool keepCheckpoint)
    {
        WorkerJobSession? session;
        lock (_gate) session = _session?.JobId == jobId ? _session : null;
        session ??= _spaceRequests.Keys.FirstOrDefault(s => s.JobId == jobId);
        if (session is null) return false;
        session.Cancel(keepCheckpoint);
        return true;
    }

    private void OnResultsRemoved(KeptResults removed)
    {
        // The record keeps its state; only the results are gone.
        _reporter.ReportState(new JobRecord { JobId = removed.JobId, State = removed.State, Error = removed.Error, ResultsAvailable = false, FinishedAt = removed.FinishedAt });
    }

    private async Task HandleCollectOfferAsync(SdpMessage offer)
    {
        if (_stopping.IsCancellationRequested) return;
        if (!await _collections.WaitAsync(0).ConfigureAwait(false))
        {
            Note($"Rejecting a collection from {offer.Sender}: {_options.MaxConcurrentCollections} collections already run");
            await _signaling.SendBusyRejectionAsync(offer.Sender, "collecting", _stopping.Token).ConfigureAwait(false);
            return;
        }
        var connection = NewPeerConnection();
        var vanished = false;
        try
        {
            var opened = new TaskCompletionSource<ChannelGate>(TaskCreationOptions.RunContinuationsAsynchronously);
            connection.DataChannelOpened += channel => opened.TrySetResult(NewGate(channel, connection));
            connection.StateChanged += state =>
            {
                if (state is PeerConnectionState.Failed or PeerConnectionState.Closed)
                    opened.TrySetException(new IOException($"the peer connection {state.ToString().ToLowerInvariant()}"));
            };
            ChannelGate gate;
            using (var timeout = CancellationTokenSource.CreateLinkedTokenSource(_stopping.Token))
            {
                timeout.CancelAfter(_options.ReservationTimeout);
                try
                {
                    var answer = await connection.AcceptOfferAsync(offer.Sdp, timeout.Token).ConfigureAwait(false);
                    await _signaling.SendAnswerAsync(offer.Sender, answer, timeout.Token).ConfigureAwait(false);
                    gate = await opened.Task.WaitAsync(timeout.Token).ConfigureAwait(false);
                    await gate.Decision.WaitAsync(timeout.Token).ConfigureAwait(false);
                }
                catch (Exception e) when (e is OperationCanceledException or IOException or SignalingException)
                {
                    if (opened.Task.IsCompletedSuccessfully) opened.Task.Result.Detach();
                    vanished = true;
                    Note($"Collection from {offer.Sender} did not open a data channel ({e.Message})");
                    return;
                }
            }
            // Results go only to a client that proved the room token (a classic peer never collects).
            if (!await AdmitAsync(gate, offer.Sender, verifiedOnly: true).ConfigureAwait(false)) return;
            var collection = new ResultCollection(gate.Channel, _results, CollectionOptions(), _log);
            gate.Release();
            var end = await collection.RunAsync(CollectHelloTimeout, _stopping.Token).ConfigureAwait(false);
            vanished = end == CollectionEnd.Abandoned;
            Note($"Collection of {collection.JobId ?? "(no job id)"} by {offer.Sender}: {end}");
            CollectionCompleted?.Invoke(collection.JobId, end);
        }
        finally
        {
            _collections.Release();
            if (vanished) _ = connection.DisposeAsync().AsTask().ContinueWith(t => _ = t.Exception, TaskScheduler.Default);
            else await connection.DisposeAsync().ConfigureAwait(false);
        }
    }

    private async Task HandleCollectOfferObservedAsync(SdpMessage offer)
    {
        try { await HandleCollectOfferAsync(offer).ConfigureAwait(false); }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            _log.Write(LogLevel.Error, Component, $"collection offer from {offer.Sender} failed: {e.GetType().Name}: {e.Message}");
        }
    }

    private WorkerJobOptions CollectionOptions() => new()
    {
        JobsDirectory = _jobsDirectory,
        ResultsDrainTimeout = TimeSpan.FromSeconds(10),
    };

    private IPeerConnection NewPeerConnection()
    {
        var template = _options.PeerConnection ?? new PeerConnectionOptions();
        return _options.PeerConnectionFactory.Create(new PeerConnectionOptions
        {
            StunServers = template.StunServers.Count > 0 ? template.StunServers : StunServers,
            IceServers = template.IceServers.Count > 0 ? template.IceServers : TurnServers,
            TurnTrustedCertificates = template.TurnTrustedCertificates ?? WebRtc.IceServer.LoadTrustedCertificates(),
            RelayOnly = template.RelayOnly,
            IncludeLoopback = template.IncludeLoopback,
            LocalAddresses = template.LocalAddresses,
            MaxMessageSize = template.MaxMessageSize,
        });
    }
}

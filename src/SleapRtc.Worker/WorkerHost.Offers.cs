using System.Text.Json.Nodes;
using SleapRtc.Protocol.Jobs;
using SleapRtc.Protocol.Logging;
using SleapRtc.Protocol.Signaling;
using SleapRtc.Signaling.Client;
using SleapRtc.WebRtc;
using SleapRtc.Worker.Jobs;

namespace SleapRtc.Worker;

// Offers, the status lifecycle (available -> reserved -> busy -> available) and progress publishing.
public sealed partial class WorkerHost
{
    private JobProgress? _pendingProgress;
    private long _lastProgressPublishTicks;
    private int _progressPublishScheduled;

    private async Task HandleOfferObservedAsync(SdpMessage offer)
    {
        try
        {
            await HandleOfferAsync(offer).ConfigureAwait(false);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            // Nothing a client does may take the worker down; log and serve the next one.
            _log.Write(LogLevel.Error, Component, $"offer from {offer.Sender} failed: {e.GetType().Name}: {e.Message}");
        }
    }

    private async Task HandleOfferAsync(SdpMessage offer)
    {
        if (_stopping.IsCancellationRequested) return;
        var jobDone = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        // Atomic with the check: a second offer racing this one sees "reserved".
        if (!TryChangeStatus(WorkerStatus.Reserved, from => from == WorkerStatus.Available, out var refusedStatus,
                whileLocked: () => _currentJob = jobDone.Task, reason: $"Accepting connection from {offer.Sender} (status: available)"))
        {
            Note($"Rejecting connection from {offer.Sender} - worker is {refusedStatus}");
            await _signaling.SendBusyRejectionAsync(offer.Sender, refusedStatus, _stopping.Token).ConfigureAwait(false);
            return;
        }

        try
        {
            await PublishStatusAsync(WorkerStatus.Reserved).ConfigureAwait(false);
            await ServeClientAsync(offer).ConfigureAwait(false);
        }
        finally
        {
            lock (_gate) _session = null;
            // A partial upload kept for its client keeps the worker reserved for that job (WorkerHost.Resume).
            if (!HoldsParkedUpload) await ClearJobAndBecomeAvailableAsync().ConfigureAwait(false);
            jobDone.TrySetResult();
        }
    }

    /// <param name="resuming">The offer resumes the upload this worker keeps: the session serves that job only.</param>
    private async Task ServeClientAsync(SdpMessage offer, bool resuming = false)
    {
        var connection = NewPeerConnection();
        var clientGone = false;
        try
        {
            clientGone = await ServeClientAsync(offer, connection, resuming).ConfigureAwait(false);
        }
        finally
        {
            // A graceful shutdown waits for a vanished client in vain (seconds): be available meanwhile.
            if (clientGone) _ = connection.DisposeAsync().AsTask().ContinueWith(t => _ = t.Exception, TaskScheduler.Default);
            else await connection.DisposeAsync().ConfigureAwait(false);
        }
    }

    /// <returns>True when the client vanished.</returns>
    private async Task<bool> ServeClientAsync(SdpMessage offer, IPeerConnection connection, bool resuming)
    {
        var channelOpened = new TaskCompletionSource<(IDataChannel Channel, WorkerJobSession Session)>(TaskCreationOptions.RunContinuationsAsynchronously);
        // The session is created inside the event so it listens before the client's first message arrives.
        connection.DataChannelOpened += channel => channelOpened.TrySetResult((channel, NewSession(channel, resuming)));
        connection.StateChanged += state =>
        {
            if (state is PeerConnectionState.Failed or PeerConnectionState.Closed)
            {
                channelOpened.TrySetException(new IOException($"the peer connection {state.ToString().ToLowerInvariant()}"));
                // This connection's job, whichever it is (a space serves several at once).
                if (channelOpened.Task.IsCompletedSuccessfully) channelOpened.Task.Result.Session.PeerLost();
            }
        };

        // The server says when the client left before the channel opened (killed mid-negotiation): no need to
        // wait out the reservation timeout for a connection that cannot come.
        void OnSignalingError(SignalingError error)
        {
            if (error.Code == ErrorCodes.PeerLeft && error.Sender == offer.Sender
                || error.Code == ErrorCodes.PeerNotFound && error.InReplyTo == MessageTypes.Answer && error.Raw.GetString("target_peer_id") == offer.Sender)
                channelOpened.TrySetException(new IOException("the client left the signaling server"));
        }

        using var reservation = CancellationTokenSource.CreateLinkedTokenSource(_stopping.Token);
        reservation.CancelAfter(_options.ReservationTimeout);
        IDataChannel channel;
        WorkerJobSession session;
        _signaling.ErrorReceived += OnSignalingError;
        try
        {
            var answer = await connection.AcceptOfferAsync(offer.Sdp, reservation.Token).ConfigureAwait(false);
            await _signaling.SendAnswerAsync(offer.Sender, answer, reservation.Token).ConfigureAwait(false);
            (channel, session) = await channelOpened.Task.WaitAsync(reservation.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is OperationCanceledException or IOException or SignalingException)
        {
            if (channelOpened.Task.IsCompletedSuccessfully) channelOpened.Task.Result.Session.Abandon();
            Note($"Client {offer.Sender} did not open a data channel ({(e is OperationCanceledException ? "timed out" : e.Message)}); available again");
            return true;
        }
        finally
        {
            _signaling.ErrorReceived -= OnSignalingError;
        }

        if (_spaceQueue is null) lock (_gate) _session = session;
        else _spaceRequests[session] = 0;
        if (_stopping.IsCancellationRequested) session.Stop();

        var outcome = await session.RunAsync(CancellationToken.None).ConfigureAwait(false);
        _spaceRequests.TryRemove(session, out _);
        Note($"Job {outcome.JobId} from {offer.Sender} ended: {outcome.End}{(outcome.Error is null ? "" : " (" + outcome.Error + ")")}");
        JobCompleted?.Invoke(outcome);
        // A vanished client cannot take part in a graceful close; waiting for it would only delay "available".
        if (outcome.End == WorkerJobEnd.ClientGone) return true;
        try { await channel.CloseAsync(CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(5)).ConfigureAwait(false); }
        catch (Exception e) when (e is TimeoutException or IOException or InvalidOperationException or ObjectDisposedException) { }
        return false;
    }

    private WorkerJobSession NewSession(IDataChannel channel, bool resuming = false)
    {
        var session = new WorkerJobSession(channel, SpaceJobOptions(new WorkerJobOptions
        {
            JobsDirectory = _jobsDirectory,
            TrainerPath = _trainerPath,
            Results = _results,
            IsJobIdInUse = IsJobIdInUse,
            DataRoot = _options.DataRoot,
            StopGrace = _options.StopGrace,
            KeepAliveInterval = _options.KeepAliveInterval,
            IdleTimeout = _options.ClientIdleTimeout,
            HeartbeatInterval = _options.HeartbeatInterval,
            HeartbeatTimeout = _options.HeartbeatTimeout,
            PackageLimits = new PackageLimits { MaxCompressionRatio = _options.MaxPackageRatio, MaxUnpackedBytes = _options.MaxUnpackedSize },
            // A space serves many requests at once and reserves itself for none: its uploads are not kept for a resume.
            ParkUpload = _spaceQueue is null && _options.PartialUploadRetention > TimeSpan.Zero ? ParkUpload : null,
            ClaimParkedUpload = _spaceQueue is null ? ClaimParkedUpload : null,
            PartialUploadRetention = _options.PartialUploadRetention,
            ResumeOnly = resuming,
        }), _log);
        session.JobStarted += () => _ = Task.Run(() => BecomeBusyAsync(session));
        session.LogLine += line => LogLine?.Invoke(line);
        session.ProgressChanged += OnJobProgress;
        WireJobReports(session);
        return session;
    }

    private async Task BecomeBusyAsync(WorkerJobSession session)
    {
        if (!TryChangeStatus(WorkerStatus.Busy, from => from == WorkerStatus.Reserved && _session == session, out _)) return;
        await PublishAsync(new JsonObject { [PeerMetadataKeys.Status] = WorkerStatus.Busy, [PeerMetadataKeys.Job] = ProgressNode(session.Progress) }).ConfigureAwait(false);
    }

    private async Task ClearJobAndBecomeAvailableAsync()
    {
        if (_stopping.IsCancellationRequested) return;
        TryChangeStatus(WorkerStatus.Available, _ => true, out _, whileLocked: () => _pendingProgress = null);
        // Publishing "available" also ends the server's reservation hold for the last client.
        await PublishAsync(new JsonObject { [PeerMetadataKeys.Status] = WorkerStatus.Available, [PeerMetadataKeys.Job] = null }).ConfigureAwait(false);
    }

    private Task PublishStatusAsync(string status) => PublishAsync(new JsonObject { [PeerMetadataKeys.Status] = status });

    /// <summary>
    /// The one place the status changes. Under the lock: the check against the current status, the change, its
    /// mirror on <see cref="Session"/> and <paramref name="whileLocked"/> happen together, so racing offers and a job
    /// ending cannot interleave; then, outside the lock, the reason is logged and <see cref="StatusChanged"/> raised.
    /// </summary>
    /// <param name="allowedFrom">Whether the change may happen from the current status (checked under the lock).</param>
    /// <param name="current">The status before the call (what refused the change when it returns false).</param>
    private bool TryChangeStatus(string to, Func<string, bool> allowedFrom, out string current, Action? whileLocked = null, string? reason = null)
    {
        lock (_gate)
        {
            current = _status;
            if (!allowedFrom(current)) return false;
            _status = to;
            Session.Status = to;
            whileLocked?.Invoke();
        }
        if (reason is not null) Note(reason);
        StatusChanged?.Invoke(to);
        return true;
    }

    private async Task PublishAsync(JsonObject properties)
    {
        await _metadataLock.WaitAsync().ConfigureAwait(false);
        try
        {
            await _signaling.UpdateMetadataAsync(new JsonObject { [PeerMetadataKeys.Properties] = properties }, _stopping.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is SignalingException or OperationCanceledException or InvalidOperationException)
        {
            // Offline for now: the signaling client re-registers with the merged metadata when it reconnects.
            _log.Write(LogLevel.Debug, Component, "metadata update deferred: " + e.Message);
        }
        finally
        {
            _metadataLock.Release();
        }
    }

    private void OnJobProgress(JobProgress progress)
    {
        ProgressChanged?.Invoke(progress);
        lock (_gate) _pendingProgress = progress;
        // At most one publish per interval (the monitor and Get-SleapWorker read it; the server must not be flooded).
        if (Interlocked.Exchange(ref _progressPublishScheduled, 1) == 1) return;
        var wait = _options.ProgressPublishInterval.TotalMilliseconds - (Environment.TickCount64 - Interlocked.Read(ref _lastProgressPublishTicks));
        _ = Task.Run(async () =>
        {
            if (wait > 0) await Task.Delay(TimeSpan.FromMilliseconds(wait)).ConfigureAwait(false);
            JsonNode? node;
            string status;
            lock (_gate)
            {
                node = _pendingProgress is null ? null : ProgressNode(_pendingProgress);
                status = _status;
            }
            Interlocked.Exchange(ref _lastProgressPublishTicks, Environment.TickCount64);
            Interlocked.Exchange(ref _progressPublishScheduled, 0);
            if (node is not null && status == WorkerStatus.Busy) await PublishAsync(new JsonObject { [PeerMetadataKeys.Job] = node }).ConfigureAwait(false);
        });
    }

    private async Task RepublishAfterReconnectAsync()
    {
        Note("Reconnected to the signaling server");
        string status;
        lock (_gate) status = _status;
        await PublishStatusAsync(status).ConfigureAwait(false);
        // The server may have marked the running job lost meanwhile; its record comes back with this report.
        _reporter.ReportActiveAgain();
    }

    private static JsonNode? ProgressNode(JobProgress progress) => JsonNode.Parse(JobExtensions.SerializeProgress(progress));

    private void Note(string line)
    {
        _log.Write(LogLevel.Information, Component, line);
        LogLine?.Invoke(line);
    }
}

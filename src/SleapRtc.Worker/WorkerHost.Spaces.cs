using System.Collections.Concurrent;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using SleapRtc.Protocol.Jobs;
using SleapRtc.Protocol.Logging;
using SleapRtc.Protocol.Signaling;
using SleapRtc.Signaling.Client;
using SleapRtc.Worker.Jobs;
using SleapRtc.Worker.Spaces;

namespace SleapRtc.Worker;

// Inference spaces (issue 13): a worker started with a space name registers with role "space", keeps its models,
// answers every offer (no one-client reservation) and runs the requests one at a time, in order, each within
// SpaceRequestTimeout. The name is unique in the room: a second holder is refused at start.
public sealed partial class WorkerHost
{
    private static readonly Regex SpaceName = new("^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$", RegexOptions.CultureInvariant);
    private readonly ConcurrentDictionary<WorkerJobSession, byte> _spaceRequests = new();
    private readonly SemaphoreSlim _spacePublish = new(1, 1);
    private SpaceQueue? _spaceQueue;

    /// <summary>The space this worker serves, or null for a training worker.</summary>
    public string? Space => _options.Space;
    /// <summary>Requests waiting or running in this worker's space (0 without a space).</summary>
    public int SpaceQueueLength => _spaceQueue?.Length ?? 0;

    private static void ValidateSpace(WorkerOptions options)
    {
        if (options.Space is null) return;
        if (!SpaceName.IsMatch(options.Space))
            throw new SleapRtcException("InvalidSpaceName", SleapRtcErrorKind.InvalidArgument,
                $"'{options.Space}' is not a valid space name.", "Use 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit.");
        if (options.SpaceModelPaths.Count == 0)
            throw new SleapRtcException("SpaceModelPathRequired", SleapRtcErrorKind.InvalidArgument,
                $"The space '{options.Space}' has no models.", "Pass the trained model folders with -ModelPath; requests to a space send only data.");
        foreach (var model in options.SpaceModelPaths)
            if (!Directory.Exists(model))
                throw new SleapRtcException("SpaceModelNotFound", SleapRtcErrorKind.ObjectNotFound,
                    $"The model folder '{model}' does not exist.", "Pass existing trained model folders with -ModelPath.");
    }

    private static void AddSpaceMetadata(string space, JsonArray tags, JsonObject properties)
    {
        tags.Add(SpaceMetadata.Tag);
        properties[SpaceMetadata.NameProperty] = space;
        properties[SpaceMetadata.StateProperty] = SpaceMetadata.Ready;
        properties[SpaceMetadata.QueueProperty] = 0;
        properties[PeerMetadataKeys.SupportedJobTypes] = new JsonArray("inference");
    }

    /// <summary>
    /// Refuses to serve a name another peer of the room already holds. Our server claims the name atomically when the
    /// worker registers (and refuses the registration, see WorkerHost.StartAsync); a server without that extension (a
    /// classic one) gets this best-effort check by discovery, right after registering.
    /// </summary>
    private static async Task ClaimSpaceAsync(SignalingClient signaling, string space, RegistrationResult registration, CancellationToken cancellationToken)
    {
        if (signaling.ServerClaimsSpaceNames) return;
        var holders = await signaling.DiscoverAsync(SpaceMetadata.Filter(space), cancellationToken).ConfigureAwait(false);
        var holder = holders.FirstOrDefault(p => p.PeerId != registration.PeerId);
        if (holder is not null) throw new SpaceTakenException(space, holder.PeerId, registration.RoomId);
    }

    private void StartServingSpace()
    {
        Session.Space = _options.Space;
        _spaceQueue = new SpaceQueue();
        _spaceQueue.LengthChanged += length => _ = Task.Run(PublishSpaceStateAsync);
    }

    private async Task HandleSpaceOfferAsync(SdpMessage offer)
    {
        if (_stopping.IsCancellationRequested) return;
        try
        {
            Note($"Request from {offer.Sender} for space {_options.Space}");
            // A space reserves itself for no request: there is nothing to release before a request's SLEAPRTC_RELEASED.
            await ServeClientAsync(offer, endJob: null).ConfigureAwait(false);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            _log.Write(LogLevel.Error, Component, $"space request from {offer.Sender} failed: {e.GetType().Name}: {e.Message}");
        }
    }

    /// <summary>What a job needs to run as a space request (nothing for a training worker).</summary>
    private WorkerJobOptions SpaceJobOptions(WorkerJobOptions options) => _spaceQueue is not { } queue ? options : new WorkerJobOptions
    {
        JobsDirectory = options.JobsDirectory,
        TrainerPath = options.TrainerPath,
        TrainerPriority = options.TrainerPriority,
        KeepAliveInterval = options.KeepAliveInterval,
        IdleTimeout = options.IdleTimeout,
        SpaceModelPaths = _options.SpaceModelPaths.Select(Path.GetFullPath).ToArray(),
        WaitForTurnAsync = queue.EnterAsync,
        RequestTimeout = _options.SpaceRequestTimeout,
        ChannelAuth = options.ChannelAuth,
    };

    private void StopSpaceRequests()
    {
        foreach (var request in _spaceRequests.Keys) request.Stop();
    }

    // Serialised, and reading the length when it publishes: the last publish always carries the latest length.
    private async Task PublishSpaceStateAsync()
    {
        await _spacePublish.WaitAsync().ConfigureAwait(false);
        try
        {
            var length = SpaceQueueLength;
            await PublishAsync(new JsonObject
            {
                [SpaceMetadata.QueueProperty] = length,
                [SpaceMetadata.StateProperty] = length > 0 ? SpaceMetadata.Busy : SpaceMetadata.Ready,
            }).ConfigureAwait(false);
        }
        finally
        {
            _spacePublish.Release();
        }
    }
}

/// <summary>Another worker of the room already serves an inference space of this name.</summary>
public sealed class SpaceTakenException : SleapRtcException
{
    public SpaceTakenException(string space, string holder, string roomId)
        : base("SpaceNameTaken", SleapRtcErrorKind.ResourceBusy,
            $"The space '{space}' is already served by worker {holder} in room {roomId}; a space name is unique in its room.",
            "Pick another name with -Space, or stop the worker that serves it first.")
    {
        Space = space;
        Holder = holder;
    }

    public string Space { get; }
    public string Holder { get; }
}

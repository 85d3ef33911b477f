using System.Text.Json.Nodes;
using SleapRtc.Signaling.Jobs;

namespace SleapRtc.Signaling.Server;

/// <summary>
/// The job-queue messages (<see cref="SleapRtc.Protocol.Signaling.JobQueueMessages"/>): handed to the router, which
/// runs them on the queue of this instance or forwards them to the instance running the queue (<see cref="JobQueueRouter"/>);
/// <see cref="JobRequests"/> checks and answers them.
/// </summary>
internal sealed partial class SignalingHub
{
    private const string WorkerRole = "worker";

    private static bool IsJobMessage(string type) => JobRequests.IsJobMessage(type);

    private void DispatchJobMessage(PeerSocket peer, string self, string room, string type, JsonObject message)
        => _jobs.Request(peer, self, room, peer.Role, type, message);
}

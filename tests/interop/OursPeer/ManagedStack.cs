using System.Net;
using SleapRtc.WebRtc;
using SleapRtc.WebRtc.PeerConnection;

namespace SleapRtc.Interop;

/// <summary>The managed stack behind the transport seam, configured for interop runs.</summary>
public static class ManagedStack
{
    public static IPeerConnectionFactory CreateFactory() => new RtcPeerConnectionFactory();

    /// <summary>Options for interop runs: loopback included, optionally limited to PEER_LOCAL addresses.</summary>
    public static PeerConnectionOptions OptionsFromEnvironment()
    {
        var local = Environment.GetEnvironmentVariable("PEER_LOCAL");
        return new PeerConnectionOptions
        {
            IncludeLoopback = true,
            LocalAddresses = string.IsNullOrWhiteSpace(local)
                ? null
                : local.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(IPAddress.Parse).ToArray(),
        };
    }
}

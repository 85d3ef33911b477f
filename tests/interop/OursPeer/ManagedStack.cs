using System.Net;
using SleapRtc.WebRtc;

namespace SleapRtc.Interop;

/// <summary>
/// Finds the managed stack's IPeerConnectionFactory (RtcPeerConnectionFactory) at run time, so the harness
/// builds before the stack lands and says clearly when it is absent.
/// </summary>
public static class ManagedStack
{
    public const string FactoryTypeName = "SleapRtc.WebRtc.RtcPeerConnectionFactory";

    public static bool IsPresent => typeof(IPeerConnectionFactory).Assembly.GetType(FactoryTypeName) is not null;

    public static IPeerConnectionFactory CreateFactory()
    {
        var type = typeof(IPeerConnectionFactory).Assembly.GetType(FactoryTypeName)
            ?? throw new InvalidOperationException($"the managed stack is not built in: {FactoryTypeName} not found in SleapRtc.WebRtc");
        var instance = type.GetConstructor(Type.EmptyTypes)?.Invoke(null)
            ?? type.GetProperty("Default")?.GetValue(null)
            ?? type.GetProperty("Instance")?.GetValue(null)
            ?? throw new InvalidOperationException($"{FactoryTypeName} has no parameterless constructor or static Default");
        return (IPeerConnectionFactory)instance;
    }

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

using System.Net;
using SleapRtc.WebRtc;
using SleapRtc.WebRtc.PeerConnection;

namespace SleapRtc.PowerShell.Infrastructure;

/// <summary>How this module's workers and clients make WebRTC connections.</summary>
internal static class PeerConnectionDefaults
{
    /// <summary>Comma-separated local IP addresses to gather candidates from (default: every interface).</summary>
    public const string LocalAddressesVariable = "SLEAP_RTC_LOCAL_ADDRESSES";

    private static readonly Lazy<RtcPeerConnectionFactory> s_factory = new(() => new RtcPeerConnectionFactory());

    /// <summary>One factory per process, so the DTLS certificate is generated once.</summary>
    public static IPeerConnectionFactory Factory => s_factory.Value;

    /// <summary>
    /// Loopback candidates are always offered so a worker and a client on one machine connect; SLEAP_RTC_LOCAL_ADDRESSES
    /// restricts gathering (for example to 127.0.0.1 in tests, or to the lab VLAN on multi-homed hosts).
    /// </summary>
    public static PeerConnectionOptions Options()
    {
        var configured = Environment.GetEnvironmentVariable(LocalAddressesVariable);
        IReadOnlyList<IPAddress>? addresses = null;
        if (!string.IsNullOrWhiteSpace(configured))
        {
            addresses = configured.Split(new[] { ',' }, StringSplitOptions.RemoveEmptyEntries).Select(a => a.Trim())
                .Select(a => IPAddress.TryParse(a, out var ip) ? ip : null).OfType<IPAddress>().ToList();
        }
        return new PeerConnectionOptions { IncludeLoopback = true, LocalAddresses = addresses };
    }
}

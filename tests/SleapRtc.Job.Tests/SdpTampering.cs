using SleapRtc.WebRtc;

namespace SleapRtc.Job.Tests;

/// <summary>
/// The real transport, except that every offer it accepts passes through <paramref name="offer"/> first and every
/// answer it gives through <paramref name="answer"/>: what an interfering network or middlebox would do to the SDP.
/// </summary>
internal sealed class SdpTampering(IPeerConnectionFactory inner, Func<string, string>? offer = null, Func<string, string>? answer = null)
    : IPeerConnectionFactory
{
    public IPeerConnection Create(PeerConnectionOptions options) => new Peer(inner.Create(options), offer ?? (s => s), answer ?? (s => s));

    /// <summary>Changes the last hex digit of the certificate fingerprint.</summary>
    public static string AlterFingerprint(string sdp) => MapLines(sdp, line =>
        !line.StartsWith("a=fingerprint:", StringComparison.Ordinal) ? line : line[..^1] + (line[^1] == '0' ? '1' : '0'));

    /// <summary>Drops every ICE candidate: no candidate pair can form, so the connection never comes up.</summary>
    public static string WithoutCandidates(string sdp) => MapLines(sdp, line =>
        line.StartsWith("a=candidate:", StringComparison.Ordinal) ? null : line);

    private static string MapLines(string sdp, Func<string, string?> map)
    {
        var newline = sdp.Contains("\r\n", StringComparison.Ordinal) ? "\r\n" : "\n";
        var lines = sdp.Split(newline).Select(map).Where(l => l is not null);
        return string.Join(newline, lines);
    }

    private sealed class Peer(IPeerConnection real, Func<string, string> offer, Func<string, string> answer) : ForwardingPeerConnection(real)
    {
        public override async Task<string> AcceptOfferAsync(string offerSdp, CancellationToken cancellationToken) =>
            answer(await Real.AcceptOfferAsync(offer(offerSdp), cancellationToken).ConfigureAwait(false));
    }
}

using System.Globalization;
using System.Text;

namespace SleapRtc.WebRtc.Sdp;

/// <summary>One ICE candidate as carried in "a=candidate:" lines (RFC 8839 §5.1).</summary>
public sealed record SdpCandidate(
    string Foundation,
    int Component,
    string Transport,
    uint Priority,
    string Address,
    int Port,
    string Type,
    string? RelatedAddress = null,
    int? RelatedPort = null)
{
    /// <summary>
    /// Parses "candidate:..." with or without the "a=" prefix; extension tokens (generation, network-id,
    /// network-cost, ufrag, tcptype) are skipped because no peer needs them echoed back.
    /// </summary>
    public static bool TryParse(string text, out SdpCandidate? candidate)
    {
        candidate = null;
        var value = text.Trim();
        if (value.StartsWith("a=", StringComparison.Ordinal)) value = value[2..];
        if (!value.StartsWith("candidate:", StringComparison.OrdinalIgnoreCase)) return false;
        var tokens = value["candidate:".Length..].Split(' ', StringSplitOptions.RemoveEmptyEntries);
        if (tokens.Length < 8 || !tokens[6].Equals("typ", StringComparison.OrdinalIgnoreCase)) return false;
        if (!int.TryParse(tokens[1], NumberStyles.None, CultureInfo.InvariantCulture, out var component)) return false;
        if (!uint.TryParse(tokens[3], NumberStyles.None, CultureInfo.InvariantCulture, out var priority)) return false;
        if (!int.TryParse(tokens[5], NumberStyles.None, CultureInfo.InvariantCulture, out var port) || port > 65535) return false;
        string? relatedAddress = null;
        int? relatedPort = null;
        for (var i = 8; i + 1 < tokens.Length; i += 2)
        {
            if (tokens[i] == "raddr") relatedAddress = tokens[i + 1];
            else if (tokens[i] == "rport" && int.TryParse(tokens[i + 1], NumberStyles.None, CultureInfo.InvariantCulture, out var rp)) relatedPort = rp;
        }
        candidate = new SdpCandidate(tokens[0], component, tokens[2].ToLowerInvariant(), priority, tokens[4], port,
            tokens[7].ToLowerInvariant(), relatedAddress, relatedPort);
        return true;
    }

    /// <summary>The attribute value without "a=", e.g. "candidate:1 1 udp 2130706431 10.0.0.1 5000 typ host".</summary>
    public override string ToString()
    {
        var builder = new StringBuilder();
        builder.Append(FormattableString.Invariant($"candidate:{Foundation} {Component} {Transport} {Priority} {Address} {Port} typ {Type}"));
        if (RelatedAddress is not null && RelatedPort is not null)
            builder.Append(FormattableString.Invariant($" raddr {RelatedAddress} rport {RelatedPort}"));
        return builder.ToString();
    }
}

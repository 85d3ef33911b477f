using System.Diagnostics;

namespace SleapRtc.WebRtc.Turn;

/// <summary>One TURN URL tried: the relayed address it granted, or why not.</summary>
public sealed class TurnProbeResult
{
    public TurnProbeResult(string url, string? relayedAddress, string? mappedAddress, TimeSpan elapsed, string? error)
    {
        Url = url;
        RelayedAddress = relayedAddress;
        MappedAddress = mappedAddress;
        Elapsed = elapsed;
        Error = error;
    }

    public string Url { get; }
    /// <summary>"address:port" peers would send to; null when the allocation failed.</summary>
    public string? RelayedAddress { get; }
    /// <summary>This machine's address as the TURN server saw it.</summary>
    public string? MappedAddress { get; }
    /// <summary>Connect (TCP/TLS) plus the authenticated Allocate.</summary>
    public TimeSpan Elapsed { get; }
    public string? Error { get; }
    public bool Succeeded => RelayedAddress is not null;

    public override string ToString() => Succeeded ? $"{Url}: relay {RelayedAddress}" : $"{Url}: {Error}";
}

/// <summary>A pre-flight check: allocate once on every TURN URL of a server list, then release the allocation.</summary>
public static class TurnProbe
{
    public static async Task<IReadOnlyList<TurnProbeResult>> ProbeAsync(IEnumerable<IceServer> servers, TurnClientOptions? options, CancellationToken cancellationToken)
    {
        var probes = new List<Task<TurnProbeResult>>();
        foreach (var server in servers)
            foreach (var url in server.Urls.Where(TurnServerUrl.IsTurnUrl))
                probes.Add(ProbeOneAsync(url, server.Username, server.Credential, options, cancellationToken));
        return await Task.WhenAll(probes).ConfigureAwait(false);
    }

    private static async Task<TurnProbeResult> ProbeOneAsync(string url, string? username, string? password, TurnClientOptions? options, CancellationToken cancellationToken)
    {
        var clock = Stopwatch.StartNew();
        if (!TurnServerUrl.TryParse(url, out var parsed)) return new TurnProbeResult(url, null, null, clock.Elapsed, "not a valid TURN URL");
        if (username is null || password is null) return new TurnProbeResult(url, null, null, clock.Elapsed, "no credentials were given for it");
        try
        {
            using var allocation = await TurnAllocation.AllocateAsync(parsed!, username, password, options, null, cancellationToken).ConfigureAwait(false);
            return new TurnProbeResult(url, allocation.RelayedEndPoint.ToString(), allocation.MappedEndPoint?.ToString(), clock.Elapsed, null);
        }
        catch (TurnException e)
        {
            // The message starts with "TURN server <url>: "; the URL is in the result already.
            var prefix = $"TURN server {url}: ";
            return new TurnProbeResult(url, null, null, clock.Elapsed, e.Message.StartsWith(prefix, StringComparison.Ordinal) ? e.Message.Substring(prefix.Length) : e.Message);
        }
        catch (Exception e) when (e is IOException or System.Net.Sockets.SocketException or System.Security.Authentication.AuthenticationException)
        {
            return new TurnProbeResult(url, null, null, clock.Elapsed, e.Message);
        }
    }
}

namespace SleapRtc;

/// <summary>
/// What Test-SleapConnection found, step by step: the signaling server, this machine's addresses as the server's STUN
/// sees them, a TURN allocation, and a short round trip to a worker over a data channel. <see cref="Succeeded"/> is
/// the pre-flight answer for scripts: no step failed.
/// </summary>
public sealed class ConnectionTestResult
{
    public string Server { get; set; } = "";
    public string RoomId { get; set; } = "";
    /// <summary>The worker the round trip went to; null when none was given.</summary>
    public string? WorkerId { get; set; }
    /// <summary>True when no step failed (a step that is not configured, or skipped because nothing asked for it, does not fail).</summary>
    public bool Succeeded => Steps.Length > 0 && Array.TrueForAll(Steps, s => s.Status != ConnectionTestStatus.Failed);
    /// <summary>The quickest of a few HTTP round trips to the server (GET /health).</summary>
    public TimeSpan? ServerLatency { get; set; }
    /// <summary>This machine's addresses as the server's STUN sees them ("address:port").</summary>
    public string[] ReflexiveAddresses { get; set; } = Array.Empty<string>();
    /// <summary>The path the worker round trip took: host, srflx or relay; null when there was none.</summary>
    public string? Path { get; set; }
    /// <summary>The median round trip of a few messages over the channel to the worker.</summary>
    public TimeSpan? RoundTrip { get; set; }
    /// <summary>Verified when the worker proved the room token over the channel; Unverified (classic) for a classic worker.</summary>
    public string? ChannelAuth { get; set; }
    /// <summary>Server, Stun, Turn, Worker, in that order.</summary>
    public ConnectionTestStep[] Steps { get; set; } = Array.Empty<ConnectionTestStep>();

    public override string ToString() => $"{Server}: {(Succeeded ? "succeeded" : "failed")}";
}

/// <summary>One step of a connection test.</summary>
public sealed class ConnectionTestStep
{
    /// <summary>Server, Stun, Turn or Worker.</summary>
    public string Name { get; set; } = "";
    /// <summary>Passed, Failed, NotConfigured (the server hands out nothing to test) or Skipped (not asked for, or an earlier step failed).</summary>
    public string Status { get; set; } = ConnectionTestStatus.Skipped;
    public TimeSpan? Duration { get; set; }
    /// <summary>What was found, or why it failed and what to check.</summary>
    public string Detail { get; set; } = "";

    public override string ToString() => $"{Name}: {Status}";
}

/// <summary>The values of <see cref="ConnectionTestStep.Status"/>.</summary>
public static class ConnectionTestStatus
{
    public const string Passed = "Passed";
    public const string Failed = "Failed";
    public const string NotConfigured = "NotConfigured";
    public const string Skipped = "Skipped";
}

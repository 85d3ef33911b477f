namespace SleapRtc.Client.Jobs;

/// <summary>
/// How a transfer cut off mid-file (the connection lost, the worker still there) is retried: up to
/// <see cref="MaxRetries"/> new connections, the n-th after <see cref="FirstDelay"/> × 2^(n-1), at most
/// <see cref="MaxDelay"/> (defaults: 5 retries after 1, 2, 4, 8 and 15 s, so about half a minute in all). Each retry
/// resumes from the last byte the other side confirms.
/// </summary>
public sealed record TransferRetryPolicy
{
    public const int DefaultMaxRetries = 5;
    public int MaxRetries { get; init; } = DefaultMaxRetries;
    public TimeSpan FirstDelay { get; init; } = TimeSpan.FromSeconds(1);
    public TimeSpan MaxDelay { get; init; } = TimeSpan.FromSeconds(15);

    public static TransferRetryPolicy Default { get; } = new();

    /// <summary>No retries: a lost connection ends the transfer (as before issue 16).</summary>
    public static TransferRetryPolicy None { get; } = new() { MaxRetries = 0 };

    /// <summary>The wait before retry <paramref name="attempt"/> (1-based).</summary>
    public TimeSpan Delay(int attempt)
    {
        var ticks = FirstDelay.Ticks * Math.Pow(2, Math.Max(0, attempt - 1));
        return TimeSpan.FromTicks((long)Math.Min(ticks, MaxDelay.Ticks));
    }
}

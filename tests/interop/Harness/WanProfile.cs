namespace SleapRtc.Interop;

/// <summary>
/// A named wide-area path for <see cref="LossyUdpRelay"/>: the same impairment in each direction, so the round trip
/// is twice <see cref="Impairment.Delay"/> and both data and SACKs see the loss.
/// </summary>
public sealed record WanProfile(string Name, Impairment EachWay)
{
    /// <summary>
    /// Lab to a cloud GPU: 40 ms RTT, 0.5 % random loss each way, 200 Mbit/s with a queue of one bandwidth-delay
    /// product (1 MB: the classic router sizing), dropping at the tail beyond it.
    /// </summary>
    public static WanProfile Wan40 { get; } = new("wan40", new Impairment(0.005, 0, TimeSpan.Zero)
    {
        Delay = TimeSpan.FromMilliseconds(20),
        RateBitsPerSecond = 200e6,
        QueueBytes = 1_000_000,
    });

    /// <summary>A nearby site: 10 ms RTT, 0.1 % random loss each way, no rate cap.</summary>
    public static WanProfile Wan10 { get; } = new("wan10", new Impairment(0.001, 0, TimeSpan.Zero)
    {
        Delay = TimeSpan.FromMilliseconds(5),
    });

    public static IReadOnlyList<WanProfile> All { get; } = new[] { Wan40, Wan10 };

    public static WanProfile Parse(string name) =>
        All.FirstOrDefault(p => p.Name.Equals(name.Trim(), StringComparison.OrdinalIgnoreCase))
        ?? throw new ArgumentException($"unknown WAN profile \"{name}\" (known: {string.Join(", ", All.Select(p => p.Name))})");

    public override string ToString() => $"{Name}: RTT {2 * EachWay.Delay.TotalMilliseconds:0} ms; each way {EachWay}";
}

using System.Globalization;
using System.Text.RegularExpressions;

namespace SleapRtc.Protocol.Jobs;

/// <summary>What one line of "sleap-nn track" output says; null fields were not on the line.</summary>
public readonly record struct TrackLineInfo(int? FramesDone, int? FramesTotal, double? FramesPerSecond, int? Instances)
{
    public bool IsEmpty => FramesDone is null && Instances is null && FramesPerSecond is null;
}

/// <summary>
/// Reads inference progress from the tracker's console output, on both sides: our worker reads it for the
/// monitor, our client reads it from TRACK_LOG lines (so progress also shows with a classic worker, which sends
/// nothing structured). sleap-nn's progress bar reads like "Predicting... 45/100 frames ... 212.3 FPS"; a
/// count only counts when the line talks about frames or predicting, so config dumps such as "3/4" are ignored.
/// </summary>
public static class TrackOutputParser
{
    private static readonly Regex FrameCount = new(@"(\d+)\s*/\s*(\d+)", RegexOptions.CultureInvariant);
    private static readonly Regex AboutFrames = new(@"frame|predict", RegexOptions.IgnoreCase | RegexOptions.CultureInvariant);
    private static readonly Regex Rate = new(@"(\d+(?:\.\d+)?)\s*(?:FPS|frames?/s|it/s)", RegexOptions.IgnoreCase | RegexOptions.CultureInvariant);
    private static readonly Regex InstanceCount = new(@"(\d+)\s+(?:predicted\s+)?instances\b", RegexOptions.IgnoreCase | RegexOptions.CultureInvariant);

    public static TrackLineInfo Parse(string line)
    {
        int? done = null, total = null, instances = null;
        double? rate = null;
        if (AboutFrames.IsMatch(line) && FrameCount.Match(line) is { Success: true } count)
        {
            done = ParseInt(count.Groups[1].Value);
            total = ParseInt(count.Groups[2].Value);
            if (done > total) (done, total) = (null, null);
        }
        if (Rate.Match(line) is { Success: true } r &&
            double.TryParse(r.Groups[1].Value, NumberStyles.Float, CultureInfo.InvariantCulture, out var fps)) rate = fps;
        if (InstanceCount.Match(line) is { Success: true } i) instances = ParseInt(i.Groups[1].Value);
        return new TrackLineInfo(done, total, rate, instances);
    }

    private static int? ParseInt(string s) => int.TryParse(s, NumberStyles.Integer, CultureInfo.InvariantCulture, out var n) ? n : null;
}

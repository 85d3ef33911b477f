using System.Globalization;
using System.Text.RegularExpressions;

namespace SleapRtc.Protocol.Jobs;

/// <summary>What one trainer output line says about progress; null fields were not on the line.</summary>
public readonly record struct TrainerLineInfo(int? Epoch, int? EpochCount, double? Loss, double? ValLoss)
{
    public bool IsEmpty => Epoch is null && Loss is null && ValLoss is null;
}

/// <summary>
/// Reads epochs and losses from sleap-nn's console output. sleap-nn trains with Lightning, whose progress
/// lines read "Epoch 3: 40%|...| 4/10 [..., train_loss=0.012, val_loss=0.02]" (0-based epoch); other
/// loggers print "Epoch 4/10". Both are accepted; the reported epoch is always 1-based.
/// </summary>
public static class TrainerOutputParser
{
    private const string Number = @"[-+]?(?:\d+\.?\d*(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?|nan|inf)";
    private static readonly Regex EpochOfCount = new(@"\bEpoch\s+(\d+)\s*/\s*(\d+)", RegexOptions.IgnoreCase | RegexOptions.CultureInvariant);
    private static readonly Regex LightningEpoch = new(@"\bEpoch\s+(\d+)\s*:", RegexOptions.CultureInvariant);
    private static readonly Regex TrainLoss = new(@"(?<![\w.])(?:train_loss(?:_epoch|_step)?|loss)\s*[=:]\s*(" + Number + ")", RegexOptions.IgnoreCase | RegexOptions.CultureInvariant);
    private static readonly Regex ValLoss = new(@"(?<![\w.])val_loss(?:_epoch)?\s*[=:]\s*(" + Number + ")", RegexOptions.IgnoreCase | RegexOptions.CultureInvariant);

    public static TrainerLineInfo Parse(string line)
    {
        int? epoch = null, count = null;
        var m = EpochOfCount.Match(line);
        if (m.Success)
        {
            epoch = ParseInt(m.Groups[1].Value);
            count = ParseInt(m.Groups[2].Value);
        }
        else
        {
            var lightning = LightningEpoch.Match(line);
            if (lightning.Success && ParseInt(lightning.Groups[1].Value) is { } zeroBased) epoch = zeroBased + 1;
        }

        var loss = TrainLoss.Match(line) is { Success: true } t ? ParseDouble(t.Groups[1].Value) : null;
        var val = ValLoss.Match(line) is { Success: true } v ? ParseDouble(v.Groups[1].Value) : null;
        return new TrainerLineInfo(epoch, count, loss, val);
    }

    /// <summary>"trainer_config.max_epochs=N" among the override arguments, or null.</summary>
    public static int? MaxEpochsFromArguments(IEnumerable<string> arguments)
    {
        foreach (var a in arguments)
        {
            const string key = "trainer_config.max_epochs=";
            var trimmed = a.TrimStart('+');
            if (trimmed.StartsWith(key, StringComparison.Ordinal)) return ParseInt(trimmed.Substring(key.Length));
        }
        return null;
    }

    private static int? ParseInt(string s) => int.TryParse(s, NumberStyles.Integer, CultureInfo.InvariantCulture, out var n) ? n : null;

    private static double? ParseDouble(string s) =>
        double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out var d) ? d : null;
}

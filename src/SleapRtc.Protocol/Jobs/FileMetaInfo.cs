using System.Globalization;
using System.Text.RegularExpressions;

namespace SleapRtc.Protocol.Jobs;

/// <summary>
/// "FILE_META::name:size:third". Classic peers split on ':' and expect exactly three parts; the third is
/// the GUI flag (client -> worker, Python bool text) or the output directory (worker -> client).
/// </summary>
public sealed record FileMetaInfo(string Name, long Size, string Third)
{
    // Shortest name followed by an all-digit size, so a Windows path in the third field (C:\x) still parses.
    private static readonly Regex Shape = new(@"^(?<name>.+?):(?<size>\d+):(?<third>.*)$", RegexOptions.CultureInvariant);

    public string ToMessage() =>
        JobMessages.FileMeta + JobMessages.Separator + Name + ":" + Size.ToString(CultureInfo.InvariantCulture) + ":" + Third;

    public static bool TryParse(string argument, out FileMetaInfo? meta)
    {
        meta = null;
        var match = Shape.Match(argument);
        if (!match.Success) return false;
        if (!long.TryParse(match.Groups["size"].Value, NumberStyles.None, CultureInfo.InvariantCulture, out var size)) return false;
        meta = new FileMetaInfo(match.Groups["name"].Value, size, match.Groups["third"].Value);
        return true;
    }

    /// <summary>A name classic peers can parse: no ':' (their split would break) and no directory part.</summary>
    public static string WireSafeName(string fileName) =>
        Path.GetFileName(fileName.Replace('\\', '/')).Replace(':', '_');
}

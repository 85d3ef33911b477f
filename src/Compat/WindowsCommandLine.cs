namespace SleapRtc.Compat;

/// <summary>
/// Command-line quoting for Windows, where netstandard2.0 has no ProcessStartInfo.ArgumentList. Compiled on net8.0 too
/// (unused there) so the tests can hold it against the documented parsing rules.
/// </summary>
internal static class WindowsCommandLine
{
    /// <summary>
    /// One argument quoted per the Microsoft C runtime / CommandLineToArgvW rules (backslashes escape only when they
    /// precede a quote), so the child sees it verbatim.
    /// </summary>
    public static string QuoteArgument(string argument)
    {
        if (argument.Length > 0 && argument.IndexOfAny(new[] { ' ', '\t', '\n', '\v', '"' }) < 0) return argument;
        var builder = new System.Text.StringBuilder("\"");
        var backslashes = 0;
        foreach (var c in argument)
        {
            if (c == '\\') { backslashes++; continue; }
            if (c == '"') builder.Append('\\', backslashes * 2 + 1);
            else builder.Append('\\', backslashes);
            backslashes = 0;
            builder.Append(c);
        }
        builder.Append('\\', backslashes * 2).Append('"');
        return builder.ToString();
    }
}

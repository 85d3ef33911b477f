using System.Security.Cryptography;
using System.Text;
using SleapRtc.Compat;
using SleapRtc.WebRtc.Sctp;
using Xunit;

namespace SleapRtc.WebRtc.Tests.Compat;

/// <summary>
/// Code the netstandard2.0 build (Windows PowerShell 5.1) runs in place of a net8.0 API, checked here against the
/// API itself or the documented rule it follows.
/// </summary>
public sealed class PortableCodeTests
{
    [Fact]
    public void Table_crc32c_equals_the_cpu_instruction_on_every_length_and_alignment()
    {
        var data = RandomNumberGenerator.GetBytes(5000);
        for (var offset = 0; offset < 9; offset++)
        {
            foreach (var length in new[] { 0, 1, 7, 8, 9, 63, 64, 1163, 4096 })
            {
                var slice = data.AsSpan(offset, length);
                Assert.Equal(Crc32c.Update(0xFFFFFFFFu, slice), Crc32cTables.Update(0xFFFFFFFFu, slice));
            }
        }
        // RFC 3720 B.4 check value: 32 bytes of zeros.
        Assert.Equal(0x8A9136AAu, ~Crc32cTables.Update(0xFFFFFFFFu, new byte[32]));
    }

    [Theory]
    [InlineData("plain")]
    [InlineData("")]
    [InlineData("with space")]
    [InlineData("C:\\Program Files\\sleap-nn\\")]
    [InlineData("say \"hi\"")]
    [InlineData("trailing\\\\")]
    [InlineData("back\\\\\"quote")]
    [InlineData("\\\"")]
    [InlineData("tab\tand\nnewline")]
    [InlineData("--config-name=a b.json")]
    public void A_quoted_argument_parses_back_to_itself_under_the_windows_rules(string argument)
    {
        var line = "prog " + WindowsCommandLine.QuoteArgument(argument) + " next";
        Assert.Equal(new[] { "prog", argument, "next" }, ParseWindowsCommandLine(line));
    }

    /// <summary>
    /// The Microsoft C runtime's argv rules, as documented for CommandLineToArgvW: 2n backslashes before a quote give n
    /// and toggle quoting, 2n+1 give n and a literal quote, backslashes elsewhere are literal, whitespace outside
    /// quotes separates arguments.
    /// </summary>
    private static List<string> ParseWindowsCommandLine(string line)
    {
        var arguments = new List<string>();
        var current = new StringBuilder();
        var inQuotes = false;
        var hasArgument = false;
        for (var i = 0; i < line.Length; i++)
        {
            var c = line[i];
            if (c == '\\')
            {
                var run = 0;
                while (i < line.Length && line[i] == '\\') { run++; i++; }
                if (i < line.Length && line[i] == '"')
                {
                    current.Append('\\', run / 2);
                    if (run % 2 == 1) current.Append('"');
                    else inQuotes = !inQuotes;
                }
                else
                {
                    current.Append('\\', run);
                    i--;
                }
                hasArgument = true;
            }
            else if (c == '"')
            {
                inQuotes = !inQuotes;
                hasArgument = true;
            }
            else if ((c == ' ' || c == '\t') && !inQuotes)
            {
                if (hasArgument) arguments.Add(current.ToString());
                current.Clear();
                hasArgument = false;
            }
            else
            {
                current.Append(c);
                hasArgument = true;
            }
        }
        if (hasArgument) arguments.Add(current.ToString());
        return arguments;
    }
}

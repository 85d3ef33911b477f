using System.Management.Automation.Language;
using System.Text.RegularExpressions;

namespace SleapRtc.PowerShell.Tests;

/// <summary>
/// The demo, the README, the guides and the Pester files are what users copy. No pwsh runs here, so they are
/// checked statically against the loaded module: they parse, name only commands the module exports, and pass
/// only parameters those commands have (resolved the way the binder does: prefixes and aliases).
/// </summary>
public sealed partial class DocumentedCodeTests : IClassFixture<SharedSession>
{
    private readonly HostedPowerShell _ps;
    private readonly Lazy<Dictionary<string, string[]>> _parameterNames;

    public DocumentedCodeTests(SharedSession session)
    {
        _ps = session.PowerShell;
        _parameterNames = new Lazy<Dictionary<string, string[]>>(LoadParameterNames);
    }

    public static IEnumerable<object[]> Sources()
    {
        var root = RepoPaths.Root;
        var files = Directory.GetFiles(Path.Combine(root, "examples"), "*.ps1")
            .Concat(Directory.GetFiles(Path.Combine(root, "tests"), "*.ps1"))
            .Append(Path.Combine(root, "build.ps1"))
            .Append(Path.Combine(root, "README.md"))
            .Append(Path.Combine(RepoPaths.Docs, "about_SleapRtc.md"))
            .Concat(Directory.GetFiles(Path.Combine(RepoPaths.Docs, "guides"), "*.md"));
        return files.Select(f => new object[] { Path.GetRelativePath(root, f) });
    }

    [Theory]
    [MemberData(nameof(Sources))]
    public void Code_parses_and_calls_module_commands_only_with_parameters_they_have(string relativePath)
    {
        var blocks = CodeOf(Path.Combine(RepoPaths.Root, relativePath));
        Assert.NotEmpty(blocks);
        foreach (var code in blocks)
        {
            var ast = Parser.ParseInput(code, out _, out var errors);
            Assert.True(errors.Length == 0, $"{relativePath}: does not parse: {string.Join("; ", errors.Select(e => $"{e.Extent.StartLineNumber}: {e.Message}"))}\n{code}");
            foreach (var call in ast.FindAll(a => a is CommandAst, searchNestedScriptBlocks: true).Cast<CommandAst>())
            {
                var name = call.GetCommandName();
                if (name is null || !SleapCommandName().IsMatch(name)) continue;
                Assert.True(_parameterNames.Value.ContainsKey(name), $"{relativePath}: calls {name}, which the module does not export");
                foreach (var used in call.CommandElements.OfType<CommandParameterAst>())
                {
                    var candidates = _parameterNames.Value[name].Where(p => p.StartsWith(used.ParameterName, StringComparison.OrdinalIgnoreCase)).ToList();
                    Assert.True(candidates.Count > 0, $"{relativePath}: {name} has no parameter -{used.ParameterName}");
                }
            }
        }
    }

    [Fact]
    public void The_readme_commands_name_files_that_exist()
    {
        var readme = File.ReadAllText(Path.Combine(RepoPaths.Root, "README.md"));
        foreach (var path in new[] { "SleapRtc.sln", "examples/demo.ps1", ".ci/install-deps.sh", "build.ps1", "SleapRtc.psd1" })
        {
            Assert.Contains(path, readme);
            Assert.True(File.Exists(Path.Combine(RepoPaths.Root, path)), $"README names {path}, which does not exist");
        }
        foreach (Match bench in Regex.Matches(readme, @"--project (bench/[A-Za-z]+)"))
            Assert.True(Directory.Exists(Path.Combine(RepoPaths.Root, bench.Groups[1].Value)), $"README runs {bench.Groups[1].Value}, which does not exist");
    }

    /// <summary>
    /// A script file whole; from markdown, the powershell-fenced blocks and the inline code spans that start with one
    /// of our commands (prose like `Get-SleapWorker -Status busy`), with `&lt;id&gt;`-style placeholders made words.
    /// </summary>
    private static List<string> CodeOf(string path)
    {
        var text = File.ReadAllText(path);
        if (path.EndsWith(".ps1", StringComparison.Ordinal)) return new List<string> { text };
        var fenced = FencedPowerShell().Matches(text).Select(m => m.Groups[1].Value).ToList();
        var prose = FencedAny().Replace(text, "");
        var inline = InlineCommand().Matches(prose).Select(m => Placeholder().Replace(m.Groups[1].Value, "placeholder"));
        return fenced.Concat(inline).ToList();
    }

    private Dictionary<string, string[]> LoadParameterNames()
    {
        var rows = _ps.Run("""
            Get-Command -Module SleapRtc | ForEach-Object {
                $command = $_
                $names = foreach ($p in $command.Parameters.Values) { $p.Name; $p.Aliases }
                [pscustomobject]@{ Name = $command.Name; Parameters = @($names) -join ',' }
            }
            """).ThrowOnError().Output;
        return rows.ToDictionary(r => r.Text("Name")!, r => r.Text("Parameters")!.Split(',', StringSplitOptions.RemoveEmptyEntries), StringComparer.OrdinalIgnoreCase);
    }

    [GeneratedRegex(@"^[A-Za-z]+-Sleap[A-Za-z]+$")]
    private static partial Regex SleapCommandName();

    [GeneratedRegex(@"```(?:powershell|pwsh|ps1)\r?\n(.*?)```", RegexOptions.Singleline)]
    private static partial Regex FencedPowerShell();

    [GeneratedRegex(@"```.*?```", RegexOptions.Singleline)]
    private static partial Regex FencedAny();

    [GeneratedRegex(@"`([A-Za-z]+-Sleap[A-Za-z]+(?: [^`\r\n]*)?)`")]
    private static partial Regex InlineCommand();

    [GeneratedRegex(@"<[^<>\s]+>")]
    private static partial Regex Placeholder();
}

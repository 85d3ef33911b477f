using System.Text;
using Markdig;
using Markdig.Extensions.Tables;
using Markdig.Extensions.Yaml;
using Markdig.Syntax;
using Markdig.Syntax.Inlines;

namespace HelpBuilder;

/// <summary>Reads cmdlet pages and about topics written in the PlatyPS v2 markdown schema.</summary>
internal static class MarkdownHelpReader
{
    private static readonly MarkdownPipeline s_pipeline = new MarkdownPipelineBuilder().UseYamlFrontMatter().UsePipeTables().Build();

    public static bool IsAboutTopic(string path) =>
        Path.GetFileName(path).StartsWith("about_", StringComparison.OrdinalIgnoreCase);

    public static CommandHelp ReadCommand(string path)
    {
        var document = Markdown.Parse(File.ReadAllText(path), s_pipeline);
        var help = new CommandHelp { SourceFile = path };
        string section = "", subsection = "";
        Example? example = null;
        ParameterHelp? parameter = null;
        TypeHelp? typeHelp = null;

        foreach (var block in document)
        {
            switch (block)
            {
                case YamlFrontMatterBlock:
                    break;
                case HeadingBlock { Level: 1 } h1:
                    help.Name = InlineText(h1.Inline).Trim();
                    break;
                case HeadingBlock { Level: 2 } h2:
                    section = InlineText(h2.Inline).Trim().ToUpperInvariant();
                    subsection = "";
                    example = null; parameter = null; typeHelp = null;
                    break;
                case HeadingBlock { Level: 3 } h3:
                    subsection = InlineText(h3.Inline).Trim();
                    example = null; parameter = null; typeHelp = null;
                    switch (section)
                    {
                        case "EXAMPLES":
                            example = new Example { Title = subsection };
                            help.Examples.Add(example);
                            break;
                        case "PARAMETERS" when subsection.StartsWith('-'):
                            parameter = new ParameterHelp { Name = subsection.TrimStart('-') };
                            help.Parameters.Add(parameter);
                            break;
                        case "INPUTS":
                            typeHelp = new TypeHelp { TypeName = subsection };
                            help.Inputs.Add(typeHelp);
                            break;
                        case "OUTPUTS":
                            typeHelp = new TypeHelp { TypeName = subsection };
                            help.Outputs.Add(typeHelp);
                            break;
                    }
                    break;
                case FencedCodeBlock code:
                    var text = CodeText(code);
                    if (example is not null && example.Code.Length == 0) example.Code = text;
                    else if (example is not null) example.Remarks.Add(text);
                    else if (parameter is not null && (code.Info ?? "").Equals("yaml", StringComparison.OrdinalIgnoreCase))
                        ParameterYaml.Apply(parameter, text);
                    else if (section == "DESCRIPTION") help.Description.Add(text);
                    break;
                default:
                    if (section == "RELATED LINKS")
                    {
                        AddLinks(help, block);
                        break;
                    }
                    foreach (var paragraph in Paragraphs(block))
                    {
                        if (section == "SYNOPSIS") help.Synopsis = Join(help.Synopsis, paragraph);
                        else if (section == "DESCRIPTION") help.Description.Add(paragraph);
                        else if (example is not null) example.Remarks.Add(paragraph);
                        else if (parameter is not null) parameter.Description.Add(paragraph);
                        else if (typeHelp is not null) typeHelp.Description.Add(paragraph);
                        else if (section == "NOTES") help.Notes.Add(paragraph);
                    }
                    break;
            }
        }
        if (help.Name.Length == 0) throw new InvalidDataException($"{path}: no '# <Cmdlet-Name>' title.");
        return help;
    }

    public static AboutTopic ReadAbout(string path)
    {
        var document = Markdown.Parse(File.ReadAllText(path), s_pipeline);
        var topic = new AboutTopic { Name = Path.GetFileNameWithoutExtension(path) };
        List<TextBlock>? current = null;
        foreach (var block in document)
        {
            switch (block)
            {
                case YamlFrontMatterBlock:
                    break;
                case HeadingBlock { Level: 1 } h1:
                    topic.Name = InlineText(h1.Inline).Trim();
                    break;
                case HeadingBlock heading:
                    current = new List<TextBlock>();
                    topic.Sections.Add((InlineText(heading.Inline).Trim(), heading.Level, current));
                    break;
                case FencedCodeBlock code:
                    current?.Add(new TextBlock(CodeText(code), IsCode: true));
                    break;
                default:
                    foreach (var paragraph in Paragraphs(block)) current?.Add(new TextBlock(paragraph, IsCode: false));
                    break;
            }
        }
        return topic;
    }

    private static void AddLinks(CommandHelp help, Block block)
    {
        foreach (var link in block.Descendants<LinkInline>())
        {
            var text = InlineText(link).Trim();
            var uri = link.Url ?? "";
            // Links to sibling pages become plain names: Get-Help resolves them by command name.
            help.RelatedLinks.Add((text, uri.EndsWith(".md", StringComparison.OrdinalIgnoreCase) ? "" : uri));
        }
    }

    /// <summary>Paragraphs of a block as plain text; list items become "- item" paragraphs.</summary>
    private static IEnumerable<string> Paragraphs(Block block)
    {
        switch (block)
        {
            case ParagraphBlock paragraph:
                yield return InlineText(paragraph.Inline).Trim();
                break;
            case ListBlock list:
                foreach (var item in list.OfType<ListItemBlock>())
                {
                    var text = string.Join(" ", item.SelectMany(Paragraphs));
                    yield return (list.IsOrdered ? (list.IndexOf(item) + 1) + ". " : "- ") + text;
                }
                break;
            case QuoteBlock quote:
                foreach (var inner in quote.SelectMany(Paragraphs)) yield return inner;
                break;
            case Table table:
                // Help text has no tables: each row becomes one line with its cells separated by "|".
                foreach (var row in table.OfType<TableRow>())
                    yield return string.Join(" | ", row.OfType<TableCell>().Select(cell => string.Join(" ", cell.SelectMany(Paragraphs))));
                break;
            case LeafBlock leaf when leaf.Inline is not null:
                yield return InlineText(leaf.Inline).Trim();
                break;
        }
    }

    private static string CodeText(FencedCodeBlock code)
    {
        var lines = code.Lines.Lines.Take(code.Lines.Count).Select(l => l.ToString());
        return string.Join("\n", lines).TrimEnd();
    }

    private static string InlineText(Inline? inline)
    {
        var text = new StringBuilder();
        Append(inline, text);
        return text.ToString();

        static void Append(Inline? node, StringBuilder sb)
        {
            switch (node)
            {
                case null: return;
                case LiteralInline literal: sb.Append(literal.Content.ToString()); break;
                case CodeInline code: sb.Append(code.Content); break;
                case LineBreakInline: sb.Append(' '); break;
                case HtmlInline or HtmlEntityInline: break;
                case ContainerInline container:
                    foreach (var child in container) Append(child, sb);
                    break;
            }
        }
    }

    private static string Join(string existing, string next) => existing.Length == 0 ? next : existing + " " + next;
}

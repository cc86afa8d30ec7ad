from llmstage.fetch.main import main

main()

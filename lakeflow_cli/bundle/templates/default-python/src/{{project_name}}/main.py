import argparse


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--catalog", default="main")
    args = parser.parse_args()
    print(f"{{project_name}} main task, catalog {args.catalog}")


if __name__ == "__main__":
    main()

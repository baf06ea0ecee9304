"""What words mean to lane A: verbs and their senses, nouns by class, and the framing words.

The classifier (``nova.domain.intent.analysis``) decides *whether* a request orders
something (mood, negation, tense, who acts); this module says *what* each word would order if
it did. A word does not map to one action: "clear my inbox" deletes, "clear the balance" pays,
"a clear explanation" does nothing; "send the report" sends, "send 50 EUR" transfers money,
"send me a summary" only answers the user. So each verb lists its senses, chosen by the classes
of the words around it (its object), with a default for when the object says nothing. A
default that is risky is how "when unsure, hold" is written down: "settle it" with no object
in sight is read as a payment.

Everything is keyed folded (lowercase, no accents: ``nova.domain.textnorm.fold``), so "Réglez",
"reglez" and "RÉGLEZ" are one key. Tables are plain data; adding a synonym is adding a word.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final, Literal

from nova.domain.intent.morphology import Form, english_forms, french_forms, irregular_fr
from nova.domain.kinds import Action as Action

Kind = Literal["action", "read", "compose", "light", "generic"]
Lang = Literal["en", "fr"]

# -- object classes ----------------------------------------------------------------------------
# Words that say what a verb acts on. Entities found by ``nova.domain.intent.cues`` join these
# classes too (an amount is MONEY, an e-mail address a RECIPIENT, ...).


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


CLASSES: Final[dict[str, frozenset[str]]] = {
    "MONEY": _words(
        """invoice invoices bill bills rent fee fees fine fines tuition premium premiums installment
        installments instalment instalments loan loans mortgage debt debts tab tip tips deposit
        balance dues tax taxes vat payment payments amount amounts money cash funds fund sum total
        fare fares toll bail salary salaries wage wages payroll bonus bonuses allowance charges
        overdraft contribution donation ransom refund reimbursement expenses expense price cost
        costs quote quotes bucks quid euros euro dollars dollar pounds francs cents grand
        invoiced outstanding arrears owed owe iou paycheck paycheque income earnings
        pocket remainder share
        facture factures loyer loyers amende amendes pv contravention contraventions cotisation
        cotisations echeance echeances mensualite mensualites dette dettes impot impots taxe
        tva acompte acomptes caution ardoise addition montant montants argent fric thune
        sous pognon somme sommes frais salaire salaires prime primes pension remboursement
        versement virement paiement paiements reglement honoraires devis solde
        creance creances traite traites balles boules centimes cagnotte
        ticket tickets paie budget budgets pourboire pourboires gratuity aumone tenner
        pel livret-a
        fiver whip-round collection kitty decouvert hundred hundreds thousand thousands"""
    ),
    "ACCOUNT": _words(
        """account accounts savings checking wallet paypal venmo revolut lydia wise zelle cashapp
        iban rib bic swift bank banks pot kitty livret compte comptes epargne portefeuille
        banque banques cb visa mastercard amex card cards carte cartes stripe adyen sumup
        gocardless klarna payoneer coinbase binance pots jar tirelire sous-compte wave m-pesa
        mpesa momo paylib twint wero bizum pix upi paytm gcash pool fund"""
    ),
    "DATA": _words(
        """file files folder folders directory directories document documents doc docs email
        emails mail mails message messages note notes photo photos picture pictures pic pics
        image images video videos record records entry entries row rows table tables database
        databases db history inbox trash bin spam junk backup backups archive archives account
        accounts profile profiles data contact contacts calendar events event meeting meetings
        appointment appointments reminder reminders task tasks todo todos repo repository
        repositories branch branches commit commits log logs cache cookies downloads drafts
        draft duplicates dupes copies copy thread threads conversation conversations chat chats
        channel channels post posts comment comments tweet tweets page pages site website list
        lists playlist dataspace dataspaces item items attachment attachments recording
        recordings transcript transcripts everything stuff versions version users user screenshot
        screenshots captures capture
        subscribers cart basket storage disk drive server bucket volume container
        fichier fichiers dossier dossiers repertoire courriel courriels
        enregistrement enregistrements ligne base historique boite reception corbeille
        sauvegarde sauvegardes profil donnees agenda calendrier evenement evenements reunion
        reunions rendez-vous rappel rappels tache taches depot branche journaux
        telechargements brouillon brouillons doublons copie fil discussion discussions
        publication publications commentaire commentaires liste listes element elements piece
        pieces jointe jointes tout tous toutes truc trucs panier disque serveur espace"""
    ),
    "TEXT": _words(
        """typo typos word words sentence sentences paragraph paragraphs phrase phrases comma
        commas punctuation jargon filler fillers repetition repetitions redundancy redundancies
        formatting bold italics emoji emojis whitespace spaces adjective adjectives adverb adverbs
        intro introduction conclusion title heading headings bullet bullets passage excerpt
        snippet wording mistakes errors ambiguity anglicisms cliches tone function functions
        code script scripts class method methods query queries regex css html sql json yaml
        loop loops variable variables indentation mentions mention form field fields pasted
        below above following quote quotes text essay article copy layout table
        columns cells grocery shopping recipe to-do checklist
        faute fautes coquille coquilles mot mots paragraphe paragraphes virgule virgules
        ponctuation redondance redondances gras italique espaces adjectifs
        adverbes titre puces erreurs tournure tournures formulation fonction
        fonctions requete requetes formulaire champ champs colle collee ci-dessous ci-dessus
        suivant suivante citation texte textes redaction dissertation forme tableau colonnes mise
        cellules courses recette menu"""
    ),
    "MESSAGE": _words(
        """email e-mail mail message note reply answer response report summary minutes notes
        document doc file pdf deck slides presentation photo picture pic link invite invitation
        newsletter announcement update draft memo letter card proposal contract cv resume offer
        agenda recap screenshot photos pictures files documents docs video videos
        clip recording thanks congrats greetings wishes coucou bisous
        courriel mot reponse rapport compte-rendu cr fichier
        lien annonce brouillon lettre devis proposition
        contrat offre capture communique remerciements felicitations voeux"""
    ),
    "RECIPIENT": _words(
        """team client clients customer customers boss manager colleague colleagues coworker
        coworkers supplier suppliers vendor vendors landlord accountant lawyer hr everyone
        everybody group mom dad mum mother father wife husband friend friends partner partners
        board investors press staff company department office sister brother son daughter
        family neighbor neighbour teacher school doctor bank plumber recruiter candidate
        equipe patron chef collegue collegues fournisseur fournisseurs proprietaire comptable
        avocat rh groupe maman papa mere pere femme mari ami amis amie amies pote potes associe
        associes conseil investisseurs presse personnel service direction soeur frere fils
        fille famille voisin voisine prof ecole medecin notaire mairie banquier plombier
        bailleur syndic agence assureur employeur locataire huissier prefecture impots urssaf
        caf insurer agency employer tenant bailiff council irs hmrc parents kids children
        livreur serveur coiffeur babysitter nounou driver waiter waitress cleaner courier
        caterer caterers contractor contractors mamie papi grand-mere grand-pere grandma
        grandpa granny aunt uncle tante oncle cousin cousine subscribers abonnes followers
        diffusion attendees participants participant invitees guests mutuelle assurance"""
    ),
    "CHANNEL": _words(
        """twitter linkedin facebook fb instagram insta tiktok slack teams whatsapp telegram
        signal discord reddit mastodon bluesky blog website forum mailing newsletter intranet
        public publicly online internet web social github gitlab npm pypi youtube medium
        substack sms wiki confluence notion gazette press chat
        reseaux sociaux ligne site groupe publique publiques publics publiquement chaine"""
    ),
    "SPHERE": _words(
        """sphere spheres space spaces identity identities workspace personal private business
        work professional pro perso family home office job corporate company own mine
        side-project side employer clinic firm agency
        espace espaces identite identites personnel personnelle prive privee
        professionnel professionnelle boulot travail famille maison bureau entreprise societe
        boite taf pros persos familiaux familiales"""
    ),
    "DEVICE": _words(
        """phone laptop battery batteries car tablet device devices ipad iphone watch headphones
        airpods earbuds ebike scooter
        telephone portable ordinateur ordi batterie voiture tablette montre ecouteurs"""
    ),
    "SUBSCRIPTION": _words(
        """subscription subscriptions plan plans membership memberships licence license licenses
        licences domain domains insurance policy contract lease pass netflix spotify prime
        disney hulu icloud dropbox gym
        abonnement abonnements forfait forfaits adhesion assurance contrat bail navigo domaine
        domaines"""
    ),
    "DISCUSSION": _words(
        """argument arguments debate debates dispute disputes question questions matter matters
        score discussion disagreement disagreements conflict conflicts differences controversy
        scores doubt doubts nerves
        debat debats differend differends conflit conflits querelle querelles probleme doute"""
    ),
    "SORT": _words(
        """by alphabetically chronologically ascending descending results columns steps
        priority importance size date par ordre alphabetique chronologique croissant
        decroissant"""
    ),
    "TRAVEL": _words(
        """flight flights hotel hotels train trains room rooms taxi cab uber ride trip trips
        holiday holidays vacation stay seat seats tour tours class lesson lessons session
        airbnb ticket tickets restaurant dinner concert show
        vol vols chambre voyage sejour billet billets resto diner cours place places"""
    ),
    "ABSTRACT": _words(
        """motivation energy faith interest commitment focus confidence hope spirit spirits vows
        friendship love enthusiasm courage patience trust mood style look perspective head
        mind throat air skies explanation answer idea ideas picture view instructions goal goals
        expectations intentions culture plans
        energie foi interet confiance espoir enthousiasme moral voeux amitie amour
        tete esprit explication reponse idee idees objectif objectifs attentes"""
    ),
    "GIFT": _words("gift gifts present presents flowers cadeau cadeaux fleurs bouquet"),
    "SHOP": _words(
        """app amazon store shop online deliveroo ubereats starbucks instacart ocado
        appli boutique magasin drive commande"""
    ),
    "UNITS": _words(
        """units unit metric imperial celsius fahrenheit format formats language english french
        spanish german code python javascript json csv excel tone style voice tense
        unites metrique langue anglais francais espagnol allemand"""
    ),
}

# Pronouns that stand for an object named elsewhere: their class comes from the whole text.
PRONOUN_OBJECTS: Final = _words(
    "it them this that these those le la les l' ca cela ceci lui leur y en"
)


# -- verbs ----------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Sense:
    """``action`` when any of ``when`` is present: class names in capitals or literal words;
    ``A+B`` needs both ("ITEM+RECIPIENT": something to deliver and someone to receive it)."""

    when: frozenset[str]
    action: Action | None

    def applies(self, objects: set[str]) -> bool:
        return any(all(p in objects for p in alt.split("+")) for alt in self.when)


@dataclass(frozen=True, slots=True)
class Verb:
    """One verb of one language: its kind, its senses and default, and its phrasal variants.

    ``kind``: ``action`` verbs carry risk; ``read`` verbs (list, explain) make their object
    something to look at; ``compose`` verbs (draft, write) make it content to produce; ``light``
    verbs (make, process, approve) take their action from an action noun ("make a payment");
    ``generic`` verbs (handle, take care of) take it from their object's class. A particle
    starting with ``^`` must follow the verb directly ("écris à Paul", not "écris un mot à").
    """

    lemma: str
    lang: Lang
    kind: Kind
    default: Action | None
    senses: tuple[Sense, ...] = ()
    particles: tuple[tuple[str, Verb], ...] = ()
    defers: bool = False  # "do what the thread says": may hand the request to its context
    intransitive: bool = False  # what it acts on is its subject ("que la newsletter parte")
    outcome: bool = False  # counts only as a wished outcome ("make sure the landlord has ...")
    forms: dict[str, Form] = field(default_factory=dict, compare=False, repr=False)
    participles: frozenset[str] = field(default_factory=frozenset, compare=False, repr=False)


def _senses(spec: dict[str, Action | None]) -> tuple[Sense, ...]:
    return tuple(Sense(_words(when), action) for when, action in spec.items())


def en(
    lemma: str,
    default: Action | None,
    senses: dict[str, Action | None] | None = None,
    *,
    kind: Kind = "action",
    past: str = "",
    particles: dict[str, Verb] | None = None,
    defers: bool = False,
    outcome: bool = False,
    third: str = "",
) -> Verb:
    """An English verb; ``past`` lists irregular past forms ("paid", "sent sold")."""
    return Verb(
        lemma, "en", kind, default, _senses(senses or {}),
        tuple((particles or {}).items()), defers, outcome=outcome,
        forms=english_forms(lemma, tuple(past.split()), third),
    )  # fmt: skip


def fr(
    infinitive: str,
    default: Action | None,
    senses: dict[str, Action | None] | None = None,
    *,
    kind: Kind = "action",
    extra: dict[str, Form] | None = None,
    particles: dict[str, Verb] | None = None,
    defers: bool = False,
    intransitive: bool = False,
    outcome: bool = False,
) -> Verb:
    """A French verb; regular forms are generated, irregular ones come from ``extra``."""
    forms, participles = french_forms(infinitive, extra)
    return Verb(
        infinitive, "fr", kind, default, _senses(senses or {}),
        tuple((particles or {}).items()), defers, intransitive, outcome, forms=forms,
        participles=participles,
    )  # fmt: skip


P: Final = "PAYMENT"
T: Final = "TRANSFER"
S: Final = "SEND"
D: Final = "DELETE"
W: Final = "WRITE"
R: Final = "READ"

_MONEY = "MONEY ACCOUNT AMOUNT IBAN CARD"
_SPHERE_MOVE = "SPHERE"

# Senses shared by the generic verbs ("handle", "take care of", "s'occuper de").
_GENERIC: Final[dict[str, Action | None]] = {
    "AMOUNT IBAN CARD MONEY ACCOUNT": P,
    "SUBSCRIPTION GIFT SHOP": P,
    "ITEM+RECIPIENT": S,
    "STALE": D,
    "TEXT": W,
}

VERBS_EN: Final[tuple[Verb, ...]] = (
    # PAYMENT
    en("pay", P, {"attention visit compliment compliments tribute homage respect respects heed "
                  "price dividends lip": None}, past="paid",
       particles={"back": en("pay back", P), "off": en("pay off", P), "up": en("pay up", P)}),
    en("buy", P, {"time": None}, past="bought"),
    en("purchase", P),
    en("order", P, {"SORT": None}),
    en("reorder", P, {"SORT": None}),
    en("subscribe", P),
    en("resubscribe", P),
    en("renew", P, {"ABSTRACT": None}),
    en("re-up", P), en("reup", P),
    en("recharge", P, {"DEVICE": None}),
    en("reload", P, {"page browser app DEVICE": None}),
    en("top", None, particles={"up": en("top up", P), "off": en("top off", P)}),
    en("topup", P),
    en("donate", P),
    en("tip", P),
    en("reimburse", P),
    en("refund", P),
    en("repay", P, past="repaid"),
    en("settle", P, {"DISCUSSION": None}, particles={
        "up": en("settle up", P), "^down": en("settle down", None), "^in": en("settle in", None),
        "^into": en("settle into", None), "^for": en("settle for", None),
        "^on": en("settle on", None)}),
    en("charge", P, {"DEVICE with ahead": None}),
    en("bill", P),
    en("invoice", P),
    en("book", P, {"meeting call": S, "slot time calendar agenda focus block": None}),
    en("reserve", P, {"slot time calendar agenda": None}),
    en("have", None, {"MONEY AMOUNT NUMBER": P, "ITEM": S}, outcome=True, past="had",
       third="has"),
    en("add", W, {_SPHERE_MOVE: T}),
    en("spend", P, past="spent"),
    en("invest", P),
    en("lend", P, past="lent"),
    en("loan", P),
    en("advance", P, {_MONEY: P}),
    en("float", None, {_MONEY + " RECIPIENT": P}),
    en("bet", P, past="bet"),
    en("wager", P),
    en("bid", P),
    en("owe", P, past="owed"),
    en("wait", None, {"MONEY AMOUNT": P}),
    en("split", None, {"bill check cheque cost costs tab MONEY AMOUNT": P}),
    en("cover", None, {"bill tab cost costs expenses MONEY AMOUNT": P}),
    en("foot", None, {"bill tab MONEY": P}),
    en("chip", None, particles={"in": en("chip in", P)}),
    en("cough", None, particles={"up": en("cough up", P)}),
    en("fork", None, particles={"out": en("fork out", P), "over": en("fork over", P)}),
    en("shell", None, particles={"out": en("shell out", P)}),
    en("pony", None, particles={"up": en("pony up", P)}),
    en("stump", None, particles={"up": en("stump up", P)}),
    en("splash", None, particles={"out": en("splash out", P)}),
    en("square", None, particles={"up": en("square up", P), "away": en("square away", P)}),
    en("venmo", P), en("paypal", P), en("zelle", P), en("lydia", P),
    en("checkout", P),
    en("check", None, kind="read",
       particles={"out": en("check out", None, {"cart basket order ACCOUNT": P}, kind="read")}),
    en("upgrade", None, {"plan subscription account membership tier SUBSCRIPTION": P}),
    en("extend", None, {"SUBSCRIPTION": P}),
    en("sign", None, particles={"up": en("sign up", P), "me up": en("sign up", P)}),
    en("enroll", P), en("enrol", P), en("register", None, {"SUBSCRIPTION class course": P}),
    en("treat", None, {_MONEY: P}),
    en("give", None, {"SELF": None, "heads-up heads shout shoutout call ring buzz": S, _MONEY: P,
                      "ITEM+RECIPIENT": S},
       kind="generic", past="gave given"),
    en("grab", None, {"SELF+SHOP": P, "SELF": None, "SUBSCRIPTION TRAVEL GIFT SHOP": P}),
    en("pick", None, particles={"up": en("pick up", None, {"tab bill check cheque MONEY": P})}),
    en("park", None, {_MONEY: T}),
    en("stash", None, {_MONEY: T}),
    en("stick", None, {"AMOUNT MONEY+ACCOUNT": T, "ITEM+CHANNEL": S}, past="stuck"),
    en("chuck", None, {_MONEY: P, "DATA": D}, particles={"out": en("chuck out", D)}),
    en("hand", None, {_MONEY: P},
       particles={"over": en("hand over", None, {_MONEY: P, "DATA": S})}),
    en("wire", T, {"up circuit board": None}),
    # TRANSFER
    en("transfer", T, {"learning style knowledge skills UNITS": None, "MESSAGE": S}),
    en("remit", T),
    en("deposit", T),
    en("withdraw", None, {_MONEY: T}, past="withdrew withdrawn"),
    en("move", None, {_MONEY: T, _SPHERE_MOVE: T}),
    en("shift", None, {_MONEY: T, _SPHERE_MOVE: T}),
    en("sweep", None, {_MONEY: T}),
    en("put", None, {"AMOUNT MONEY ACCOUNT": T, _SPHERE_MOVE: T, "ITEM+CHANNEL": S, "UNITS": W},
       past="put", particles={"aside": en("put aside", None, {_MONEY: T}),
                              "away": en("put away", None, {_MONEY: T}),
                              "an end to": en("put an end to", D), "a stop to": en(
                                  "put a stop to", D)}),
    en("migrate", None, {_SPHERE_MOVE: T}),
    en("copy", None, {_SPHERE_MOVE: T, "DIRECT_RECIPIENT": S}),
    en("sync", None, {_SPHERE_MOVE: T}), en("synchronise", None, {_SPHERE_MOVE: T}),
    en("synchronize", None, {_SPHERE_MOVE: T}),
    en("merge", None, {_SPHERE_MOVE: T}),
    en("export", None, {_SPHERE_MOVE: T, "CHANNEL RECIPIENT EMAIL": S}),
    en("import", None, {_SPHERE_MOVE: T}),
    en("duplicate", None, {_SPHERE_MOVE: T}),
    en("clone", None, {_SPHERE_MOVE: T}),
    en("mirror", None, {_SPHERE_MOVE: T}),
    en("replicate", None, {_SPHERE_MOVE: T}),
    en("bring", None, {_SPHERE_MOVE: T}, past="brought"),
    en("push", None, {_SPHERE_MOVE: T, "CHANNEL RECIPIENT everyone out live": S}),
    en("back", None, particles={"up": en("back up", None, {_SPHERE_MOVE: T})}),
    # SEND
    en("send", S, {_MONEY: T, "SELF": None}, past="sent",
       particles={"out": en("send out", S), "over": en("send over", S, {_MONEY: T})}),
    en("resend", S, past="resent"),
    en("email", S, {"SELF": None}), en("e-mail", S, {"SELF": None}),
    en("mail", S, {"SELF": None}),
    en("text", S, {"SELF": None}),
    en("sms", S), en("message", S, {"SELF": None}), en("dm", S), en("pm", S),
    en("ping", S, {"SELF": None}),
    en("call", S, {"SELF": None, "it": None}),
    en("phone", S), en("ring", S, past="rang rung"), en("fax", S),
    en("forward", S, {_MONEY: T}),
    en("reply", S),
    en("respond", S),
    en("answer", None, {"question questions quiz following riddle SELF this these poll "
                        "survey": None,
                        "RECIPIENT EMAIL email mail message messages thread comment review ticket "
                        "client customer": S}),
    en("rsvp", S),
    en("wish", None, {"RECIPIENT CHANNEL": S}),
    en("leave", None, {"review reviews comment comments note message voicemail": S},
       past="left"),
    en("pass", None, particles={"along": en("pass along", S), "on": en("pass on", S)}),
    en("boot", None, particles={"off": en("boot off", D), "out": en("boot out", D)}),
    en("archive", D, {"TEXT": W}),
    en("zero", None, particles={"out": en("zero out", P, {"DATA": D})}),
    en("expect", None, {"MONEY AMOUNT": P}),
    en("stop", None, {"SUBSCRIPTION membership renewal renewing auto-renew payments payment": D}),
    en("intimate", None, {"RECIPIENT": S}),
    en("prepone", W), en("reschedule", W),
    en("spell", W, kind="compose"),
    en("accept", None, {"invite invitation invitations meeting request requests": S}),
    en("decline", None, {"invite invitation invitations meeting request requests": S}),
    en("turn", None, {"UNITS": W}, kind="compose", particles={"into": en("turn into", W,
                                                                       kind="compose")}),
    en("revert", None, {"RECIPIENT mail email thread": S}),
    en("socialize", S), en("socialise", S),
    en("post", S),
    en("repost", S),
    en("publish", S),
    en("tweet", S), en("retweet", S), en("toot", S),
    en("broadcast", S, past="broadcast"),
    en("announce", S),
    en("share", S, {"thoughts thought opinion opinions view views ideas idea tips advice "
                    "insights insight experience feedback example examples recommendations "
                    "perspective take SELF": None}),
    en("upload", S),
    en("submit", S, {_MONEY: P}),
    en("file", None, {"report complaint claim return taxes application": S}),
    en("notify", S), en("inform", S), en("alert", S), en("warn", S),
    en("remind", S, {"SELF": None}),
    en("tell", S, {"SELF": None}, past="told"),
    en("invite", S),
    en("contact", S),
    en("receive", None, {"MONEY AMOUNT": P, "ITEM": S}),
    en("reach", None, particles={"out": en("reach out", S)}),
    en("loop", None, particles={"in": en("loop in", S)}),
    en("cc", S), en("bcc", S),
    en("brief", S, {"SELF": None}),
    en("circulate", S), en("distribute", S), en("dispatch", S), en("deliver", S),
    en("blast", S),
    en("leak", S),
    en("expose", S),
    en("release", None, {"CHANNEL public publicly statement": S, _MONEY: P}),
    en("ship", S),
    en("mention", None, {"CHANNEL": S}),
    en("tag", None, {"CHANNEL": S}),
    en("let", None, {"DIRECT_RECIPIENT": S},
       particles={"know": en("let know", S, {"SELF": None})}),
    en("keep", None, particles={"posted": en("keep posted", S),
                                "in the loop": en("keep in the loop", S)}),
    en("write", W, {"check cheque": P}, kind="compose", past="wrote written",
       particles={"^to": en("write to", S), "back": en("write back", S)}),
    en("get", None, {"SUBSCRIPTION TRAVEL GIFT": P, "SELF+SHOP": P, "ITEM+RECIPIENT": S,
                     "SELF": None,
                     "AMOUNT+RECIPIENT": P, "STALE": D},
       kind="generic", past="got gotten",
       particles={"back to": en("get back to", S), "rid of": en("get rid of", D),
                  "^me off": en("get me off", D), "off": en("get off", None, {"DATA": D}),
                  "in touch": en("get in touch", S), "over to": en("get over to", S),
                  "out to": en("get out to", S)}),
    en("drop", None, {_SPHERE_MOVE: T,
                      "table database schema column index collection bucket DATA": D,
                      "line note": S},
       particles={"a line": en("drop a line", S)}),
    en("shoot", None, {"MESSAGE RECIPIENT": S}, past="shot"),
    en("fire", None, {"RECIPIENT": None}, particles={"off": en("fire off", S)}),
    en("update", W, {"RECIPIENT": S}),
    en("cancel", D, {"ABSTRACT": None}),
    # DELETE
    en("delete", D),
    en("remove", D, {"TEXT": W}),
    en("erase", D),
    en("wipe", D, {"ABSTRACT": None}, particles={"the floor": en("wipe the floor", None)}),
    en("purge", D),
    en("clear", D, {"MONEY AMOUNT": P, "up ABSTRACT": None}, particles={"out": en("clear out", D)}),
    en("tidy", D, {"TEXT": W}, particles={"up": en("tidy up", D, {"TEXT": W})}),
    en("empty", D, {"ABSTRACT": None}),
    en("reset", D, past="reset"),
    en("destroy", D),
    en("shred", D),
    en("trash", D),
    en("bin", D),
    en("discard", D),
    en("scrap", D),
    en("scrub", D, {"TEXT": W}),
    en("strip", D, {"TEXT": W}),
    en("unpublish", D),
    en("delist", D),
    en("nuke", D),
    en("obliterate", D),
    en("eliminate", D),
    en("eradicate", D),
    en("expunge", D),
    en("deactivate", D),
    en("terminate", D),
    en("revoke", D),
    en("unsubscribe", D),
    en("uninstall", D),
    en("kill", D),
    en("sunset", D),
    en("offboard", D),
    en("decommission", D),
    en("disappear", D), en("vanish", D),
    en("close", None, {"account accounts card subscription SUBSCRIPTION": D},
       particles={"out": en("close out", D), "down": en("close down", D)}),
    en("throw", None, {"AMOUNT+ACCOUNT AMOUNT+GIFT AMOUNT+RECIPIENT MONEY+ACCOUNT NUMBER+ACCOUNT "
                       "NUMBER+GIFT": P},
       past="threw thrown",
       particles={"away": en("throw away", D), "out": en("throw out", D)}),
    en("toss", D, {"idea ideas": None}),
    en("ditch", D),
    en("dump", D, {"SELF": None}),
    en("axe", D),
    en("cull", D),
    en("prune", D),
    en("clean", D, {"TEXT code": W}, particles={"up": en("clean up", D, {"TEXT code": W}),
                                                "out": en("clean out", D)}),
    en("declutter", D),
    en("overwrite", D, past="overwrote overwritten"),
    en("format", W, {"disk drive partition card": D}, kind="compose"),
    en("truncate", D, {"TEXT": W}),
    en("rm", D),
    en("unlink", D),
    en("zap", D),
    en("tear", None, past="tore torn", particles={"down": en("tear down", D)}),
    en("blow", None, past="blew blown", particles={"away": en("blow away", D)}),
    en("kick", None, {"RECIPIENT group": D}),
    en("ban", D),
    en("cut", None, {"TEXT": W, "DATA": D}, past="cut"),
    # READ (their object is something to look at, not an order)
    *(en(v, None, kind="read") for v in (
        "list show display find search look summarise summarize sum recap analyse analyze "
        "explain verify review count compare translate read report track audit calculate "
        "estimate fetch retrieve extract identify highlight flag tally categorize categorise "
        "classify group filter rank evaluate assess predict forecast describe outline "
        "detail quantify measure inspect examine investigate study scan browse locate spot "
        "know understand learn teach define clarify interpret decode decipher "
        "reconcile break figure"
    ).split()),
    en("see", None, kind="read", past="saw seen"),
    en("convert", None, {"AMOUNT+ACCOUNT MONEY+ACCOUNT": T}, kind="read"),
    en("pull", None, {_SPHERE_MOVE: T, "AMOUNT+ACCOUNT MONEY+ACCOUNT": T}, kind="read",
       particles={"up": en("pull up", None, kind="read")}),
    # COMPOSE (their object is content the user keeps)
    *(en(v, W, kind="compose") for v in (
        "draft compose prepare create generate produce suggest propose formulate word "
        "rephrase rewrite edit proofread polish improve fix correct shorten expand design "
        "plan brainstorm prep redact reword paraphrase craft "
        "jot sketch template mock draw"
    ).split()),
    en("come", None, kind="compose", past="came",
       particles={"up with": en("come up with", W, kind="compose")}),
    # LIGHT verbs: the action noun after them says what they do ("make a payment").
    *(en(v, None, kind="light") for v in (
        "make do process execute initiate schedule issue perform complete effect authorize "
        "authorise approve confirm validate finalize finalise launch trigger arrange place run "
        "action proceed carry go start"
    ).split()),
    en("set", None, kind="light", past="set", particles={"up": en("set up", None, kind="light")}),
    en("redo", None, kind="light", past="redid redone"),
    en("repeat", None, kind="light"),
    # GENERIC verbs: their object's class says what they do ("handle the ACME invoice").
    en("handle", None, _GENERIC, kind="generic", defers=True),
    en("take", None, {_SPHERE_MOVE: T, **_GENERIC}, kind="generic", past="took taken",
       particles={"care of": en("take care of", None, _GENERIC, kind="generic", defers=True),
                  "down": en("take down", D), "off": en("take off", None, {"DATA CHANNEL": D})}),
    en("deal", None, _GENERIC, kind="generic", past="dealt",
       particles={"with": en("deal with", None, _GENERIC, kind="generic", defers=True)}),
    en("sort", None, {"SORT": None}, kind="read",
       particles={"out": en("sort out", None, _GENERIC, kind="generic", defers=True)}),
    en("manage", None, _GENERIC, kind="generic"),
    en("wrap", None, particles={"up": en("wrap up", None, _GENERIC, kind="generic")}),
    en("follow", None, kind="generic", defers=True,
       particles={"up": en("follow up", S), "through": en("follow through", None, defers=True)}),
    en("apply", None, kind="generic", defers=True),
    en("implement", None, kind="generic", defers=True),
    en("fulfil", None, _GENERIC, kind="generic", defers=True),
    en("fulfill", None, _GENERIC, kind="generic", defers=True),
    en("act", None, kind="generic", particles={"on": en("act on", None, defers=True)}),
    en("use", None, {"ACCOUNT": P}, kind="generic"),
    en("help", None, kind="generic"),
)

# Irregular French forms, folded.
_ENVOYER = irregular_fr(fut="enverrai enverras enverra enverrons enverrez enverront",
                        cond="enverrais enverrait enverrions enverriez enverraient")
_METTRE = irregular_fr(inf="mettre", fin="mets met mettons mettez mettent", pp="mis mise mises",
                       fut="mettrai mettras mettra mettrons mettrez mettront", ppr="mettant",
                       subj="mette mettes")
_FAIRE = irregular_fr(inf="faire", fin="fais fait faisons faites font", pp="faite faits",
                      fut="ferai feras fera ferons ferez feront", subj="fasse fasses fassiez",
                      cond="ferais ferait")
_TRANSMETTRE = irregular_fr(
    inf="transmettre", fin="transmets transmet transmettons transmettez transmettent",
    pp="transmis transmise transmises", fut="transmettrai transmettras transmettra transmettrez",
    subj="transmette",
)
_REMETTRE = irregular_fr(inf="remettre", fin="remets remet remettez", pp="remis remise")
_DETRUIRE = irregular_fr(inf="detruire", fin="detruis detruit detruisons detruisez detruisent",
                         pp="detruit detruite detruits detruites", fut="detruirai detruira")
_REPONDRE = irregular_fr(inf="repondre", fin="reponds repond repondons repondez repondent",
                         pp="repondu repondue", fut="repondrai repondras repondra repondrez",
                         subj="reponde")
_ECRIRE = irregular_fr(inf="ecrire", fin="ecris ecrit ecrivons ecrivez ecrivent",
                       pp="ecrit ecrite ecrits ecrites", fut="ecrirai ecriras ecrira")
_DIRE = irregular_fr(inf="dire", fin="dis dit disons dites disent", pp="dit dite",
                     fut="dirai diras dira")
_PRENDRE = irregular_fr(inf="prendre", fin="prends prend prenons prenez prennent",
                        pp="pris prise", fut="prendrai prendras prendra")
_SOUSCRIRE = irregular_fr(inf="souscrire", fin="souscris souscrit souscrivez souscrivons",
                          pp="souscrit souscrite", fut="souscrirai")
_SUIVRE = irregular_fr(inf="suivre", fin="suis suit suivez suivons", pp="suivi suivie")
_DEMOLIR = irregular_fr(inf="demolir", fin="demolis demolit demolissez", pp="demoli demolie")
_ANEANTIR = irregular_fr(inf="aneantir", fin="aneantis aneantit", pp="aneanti")
_RESOUDRE = irregular_fr(inf="resoudre", fin="resous resout resolvez", pp="resolu resolue")
_OFFRIR = irregular_fr(inf="offrir", fin="offre offres offrez offrons", pp="offert offerte",
                       fut="offrirai offrira")
_VENDRE = irregular_fr(inf="vendre", fin="vends vend vendez vendons", pp="vendu vendue")
_RENDRE = irregular_fr(inf="rendre", fin="rends rend rendez", pp="rendu rendue")


def _jette(stem: str) -> dict[str, Form]:
    """-eler / -eter verbs that double their consonant before a mute e (jette, appelle)."""
    doubled = stem + stem[-1]
    return irregular_fr(fin=f"{doubled}e {doubled}es {doubled}ent",
                        fut=f"{doubled}erai {doubled}eras {doubled}era {doubled}erez",
                        cond=f"{doubled}erais {doubled}erait")


VERBS_FR: Final[tuple[Verb, ...]] = (
    # PAYMENT
    fr("payer", P, {"attention": None}),
    fr("regulariser", P, {"DISCUSSION": None}),
    fr("regler", P, {"probleme+RECIPIENT souci+RECIPIENT": S,
                     "DISCUSSION son volume parametres reglages luminosite reveil alarme "
                     "DEVICE ecran": None}),
    fr("acheter", P),
    fr("racheter", P),
    fr("commander", P, {"SORT": None}),
    fr("recommander", None),
    fr("abonner", P),
    fr("reabonner", P),
    fr("souscrire", P, extra=_SOUSCRIRE),
    fr("renouveler", P, extra=_jette("renouvel")),
    fr("reconduire", P, extra=irregular_fr(inf="reconduire", fin="reconduis reconduit reconduisez",
                                           pp="reconduit reconduite")),
    fr("prolonger", None, {"SUBSCRIPTION": P}),
    fr("recharger", P, {"DEVICE": None}),
    fr("reserver", P, {"creneau agenda calendrier moment temps plage": None}),
    fr("avoir", None, {"MONEY AMOUNT NUMBER": P, "ITEM": S}, outcome=True,
       extra=irregular_fr(inf="avoir", subj="aie aies ait aient",
                          impf="avait avais avaient")),  # "a", "as": too common
    fr("boucler", None, {"dossier compte SUBSCRIPTION": D, **_GENERIC}, kind="generic"),
    fr("donner", None, {"SELF": None, _MONEY: P, "ITEM+RECIPIENT": S}, kind="generic"),
    fr("lacher", None, {"SELF": None, _MONEY: P}, kind="generic"),
    fr("verser", T),
    fr("rembourser", P),
    fr("avancer", None, {_MONEY: P}),
    fr("preter", None, {_MONEY: P}),
    fr("cotiser", P),
    fr("investir", P, extra=irregular_fr(fin="investis investit investissez", pp="investi")),
    fr("placer", None, {_MONEY: P}),
    fr("depenser", P),
    fr("offrir", None, {_MONEY + " TRAVEL cadeau fleurs": P}, extra=_OFFRIR),
    fr("casquer", P), fr("raquer", P),
    fr("cracher", None, {_MONEY: P}),
    fr("allonger", None, {_MONEY: P}),
    fr("filer", None, {"SELF": None, _MONEY: P}),
    fr("refiler", None, {_MONEY: P}),
    fr("solder", P),
    fr("acquitter", P),
    fr("honorer", None, {_MONEY: P}),
    fr("financer", P),
    fr("participer", None, {_MONEY + " cagnotte": P}),
    fr("facturer", P),
    fr("debiter", P),
    fr("prelever", P),
    fr("crediter", T),
    fr("liquider", None, {_MONEY: P, "DATA": D}),
    fr("louer", None, {"TRAVEL voiture appartement": P}),
    fr("inscrire", None, {"SUBSCRIPTION cours": P},
       extra=irregular_fr(inf="inscrire", fin="inscris inscrit inscrivez", pp="inscrit")),
    fr("toucher", None, {"MONEY AMOUNT": P}),
    fr("attendre", None, {"MONEY AMOUNT": P},
       extra=irregular_fr(inf="attendre", fin="attends attend attendez attendent",
                          pp="attendu")),
    fr("planquer", None, {_MONEY: T}),
    # TRANSFER
    fr("virer", T, {_MONEY: T, "SELF stage job boulot travail poste equipe": None, "DATA": D,
                    "TEXT": W}),
    fr("transferer", T, {"MESSAGE": S}),
    fr("basculer", None, {_MONEY: T, _SPHERE_MOVE: T}),
    fr("deplacer", None, {_MONEY: T, _SPHERE_MOVE: T}),
    fr("alimenter", None, {_MONEY: T}),
    fr("approvisionner", None, {_MONEY: T}),
    fr("renflouer", T),
    fr("rapatrier", None, {_MONEY: T, _SPHERE_MOVE: T}),
    fr("retirer", D, {_MONEY: T, "TEXT": W}),
    fr("migrer", None, {_SPHERE_MOVE: T}),
    fr("copier", None, {_SPHERE_MOVE: T}),
    fr("recopier", None, {_SPHERE_MOVE: T}),
    fr("dupliquer", None, {_SPHERE_MOVE: T}),
    fr("synchroniser", None, {_SPHERE_MOVE: T}),
    fr("exporter", None, {_SPHERE_MOVE: T, "CHANNEL RECIPIENT EMAIL": S}),
    fr("importer", None, {_SPHERE_MOVE: T}),
    fr("fusionner", None, {_SPHERE_MOVE: T}),
    fr("ramener", None, {_SPHERE_MOVE: T}),
    fr("ajouter", W, {_SPHERE_MOVE: T}),
    fr("passer", None, {"commande": P, _SPHERE_MOVE: T}, kind="light"),
    fr("mettre", None, {"AMOUNT": T, _SPHERE_MOVE: T, "ITEM+CHANNEL": S, "UNITS": W},
       kind="generic", extra=_METTRE,
       particles={"au courant": fr("mettre au courant", S),
                  "en copie": fr("mettre en copie", S),
                  "en ligne": fr("mettre en ligne", S),
                  "a la poubelle": fr("mettre a la poubelle", D),
                  "a la corbeille": fr("mettre a la corbeille", D),
                  "de cote": fr("mettre de cote", T),
                  "a zero": fr("mettre a zero", D),
                  "en forme": fr("mettre en forme", W, kind="compose"),
                  "en page": fr("mettre en page", W, kind="compose"),
                  "fin": fr("mettre fin", D), "un terme": fr("mettre un terme", D),
                  "dans la boucle": fr("mettre dans la boucle", S)}),
    fr("remettre", None, {"usine": D}, kind="generic", extra=_REMETTRE,
       particles={"a zero": fr("remettre a zero", D)}),
    # SEND
    fr("envoyer", S, {_MONEY: T, "SELF": None}, extra=_ENVOYER),
    fr("renvoyer", S, extra=irregular_fr(fut="renverrai renverras renverra")),
    fr("expedier", S),
    fr("adresser", None, {"RECIPIENT": S}),
    fr("transmettre", S, extra=_TRANSMETTRE),
    fr("partager", S, {"avis opinion idees conseils ressenti SELF": None}),
    fr("publier", S),
    fr("poster", S),
    fr("reposter", S),
    fr("tweeter", S),
    fr("diffuser", S),
    fr("annoncer", S),
    fr("communiquer", S),
    fr("repondre", None, {"question questions quiz SELF": None,
                          "RECIPIENT EMAIL mail mails message messages courriel courriels fil "
                          "client clients commentaire avis DIRECT_RECIPIENT": S},
       extra=_REPONDRE),
    fr("contacter", S),
    fr("joindre", None, {"RECIPIENT": S},
       extra=irregular_fr(inf="joindre", fin="joins joint joignez", pp="joint")),
    fr("appeler", S, {"SELF": None}, extra=_jette("appel")),
    fr("rappeler", S, {"SELF": None}, extra=_jette("rappel")),
    fr("telephoner", S),
    fr("texter", S),
    fr("sms", S),
    fr("prevenir", S, extra=irregular_fr(inf="prevenir", fin="previens previent prevenez",
                                         pp="prevenu prevenue", fut="previendrai previendras")),
    fr("avertir", S, extra=irregular_fr(inf="avertir", fin="avertis avertit avertissez",
                                        pp="averti")),
    fr("informer", S),
    fr("notifier", S),
    fr("alerter", S),
    fr("relancer", S),
    fr("inviter", S),
    fr("mailer", S),
    fr("signaler", S, {"SELF": None}),
    fr("uploader", S),
    fr("soumettre", S, extra=irregular_fr(inf="soumettre", fin="soumets soumet soumettez",
                                          pp="soumis soumise")),
    fr("deposer", None, {_MONEY: T, "dossier candidature plainte CHANNEL": S}),
    fr("balancer", S, {_MONEY: P, "ITEM+CHANNEL ITEM+RECIPIENT CHANNEL": S, "DATA": D}),
    fr("recevoir", None, {"MONEY AMOUNT": P, "ITEM": S},
       extra=irregular_fr(inf="recevoir", fin="recois recoit recevez recevons recoivent",
                          subj="recoive recoives recoivent", pp="recu recue recus recues",
                          impf="recevais recevait recevaient")),
    fr("partir", None, {"poubelle corbeille": D, "RECIPIENT CHANNEL ITEM": S}, intransitive=True,
       extra=irregular_fr(inf="partir", fin="pars part partez partons partent",
                          subj="parte partent")),
    fr("dire", None, {"RECIPIENT": S, "SELF": None}, kind="read", extra=_DIRE),
    fr("ecrire", W, {"cheque": P}, kind="compose", extra=_ECRIRE,
       particles={"^a": fr("ecrire a", S), "^au": fr("ecrire au", S),
                  "^aux": fr("ecrire aux", S), "^lui": fr("ecrire lui", S),
                  "^leur": fr("ecrire leur", S)}),
    fr("tenir", None, extra=irregular_fr(inf="tenir", fin="tiens tient tenez"),
       particles={"au courant": fr("tenir au courant", S)}),
    fr("faire", None, {"cheque": P}, kind="light", extra=_FAIRE,
       particles={"suivre": fr("faire suivre", S), "passer": fr("faire passer", S),
                  "parvenir": fr("faire parvenir", S), "sauter": fr("faire sauter", D),
                  "le menage": fr("faire le menage", D, {"TEXT": W}),
                  "disparaitre": fr("faire disparaitre", D),
                  "pareil": fr("faire pareil", None, kind="light"),
                  "le vide": fr("faire le vide", D, {"ABSTRACT tete esprit": None}),
                  "sortir": fr("faire sortir", None, {"liste diffusion newsletter": D}),
                  "un virement": fr("faire un virement", T),
                  "le tri": fr("faire le tri", D, {"ABSTRACT TEXT": W}),
                  "tourner": fr("faire tourner", S), "circuler": fr("faire circuler", S),
                  "signe": fr("faire signe", S),
                  "ce qu' il faut": fr("faire ce qu'il faut", None, _GENERIC, kind="generic",
                                       defers=True),
                  "le necessaire": fr("faire le necessaire", None, _GENERIC, kind="generic",
                                      defers=True)}),
    fr("refaire", None, kind="light",
       extra=irregular_fr(inf="refaire", fin="refais refait refaites", pp="refait")),
    fr("annuler", D),
    fr("decommander", D),
    fr("debarquer", D, {"SELF": D}),
    fr("biper", S), fr("bipper", S),
    fr("twinter", P), fr("lydier", P),
    fr("souhaiter", None, {"RECIPIENT CHANNEL": S}),
    fr("laisser", None, {"avis commentaire message note": S}),
    fr("rajouter", None, {"boucle copie": S, _SPHERE_MOVE: T}),
    fr("archiver", D, {"TEXT": W}),
    fr("arreter", None, {"SUBSCRIPTION abonnement prelevement": D}, intransitive=True),
    fr("accepter", None, {"invitation invitations reunion demande": S}),
    fr("decliner", None, {"invitation invitations reunion demande": S}),
    fr("transformer", W, kind="compose"),
    # DELETE
    fr("supprimer", D, {"TEXT": W}),
    fr("supp", D), fr("suppr", D),
    fr("effacer", D, {"TEXT": W}),
    fr("enlever", D, {"TEXT": W}),
    fr("vider", D),
    fr("reinitialiser", D),
    fr("detruire", D, extra=_DETRUIRE),
    fr("jeter", D, extra=_jette("jet"),
       particles={"un oeil": fr("jeter un oeil", None, kind="read"),
                  "un coup d' oeil": fr("jeter un coup d'oeil", None, kind="read")}),
    fr("degager", D),
    fr("bazarder", D),
    fr("purger", D),
    fr("nettoyer", D, {"TEXT code": W}),
    fr("debarrasser", D),
    fr("eliminer", D, {"TEXT": W}),
    fr("resilier", D),
    fr("fermer", None, {"compte comptes carte abonnement SUBSCRIPTION": D}),
    fr("cloturer", None, {"compte comptes carte abonnement SUBSCRIPTION dossier": D}),
    fr("desactiver", D),
    fr("desinstaller", D),
    fr("desabonner", D),
    fr("raser", D),
    fr("ecraser", D),
    fr("formater", D, {"TEXT": W}),
    fr("zapper", D),
    fr("dezinguer", D),
    fr("flinguer", D),
    fr("demolir", D, extra=_DEMOLIR),
    fr("aneantir", D, extra=_ANEANTIR),
    fr("balayer", D),
    fr("disparaitre", D, extra=irregular_fr(inf="disparaitre", fin="disparais disparait",
                                            subj="disparaisse disparaissent",
                                            pp="disparu disparue")),
    fr("tej", D), fr("tejer", D),
    fr("couper", None, {"TEXT": W, "DATA": D}),
    fr("rayer", D, {"TEXT": W}),
    # READ
    *(fr(v, None, kind="read") for v in (
        "lister montrer afficher trouver chercher rechercher resumer recapituler analyser "
        "expliquer verifier controler compter comparer calculer estimer retrouver extraire "
        "identifier reperer classer trier filtrer evaluer detailler examiner regarder "
        "consulter sortir indiquer decrypter decoder rapprocher pointer"
    ).split()),
    fr("convertir", None, {"AMOUNT+ACCOUNT MONEY+ACCOUNT": T}, kind="read"),
    fr("lire", None, kind="read", extra=irregular_fr(inf="lire", fin="lis lit lisez", pp="lu")),
    fr("traduire", None, kind="read",
       extra=irregular_fr(inf="traduire", fin="traduis traduit traduisez", pp="traduit")),
    fr("decrire", None, kind="read",
       extra=irregular_fr(inf="decrire", fin="decris decrit decrivez", pp="decrit")),
    fr("savoir", None, kind="read", extra=irregular_fr(inf="savoir", fin="sais sait savez")),
    fr("comprendre", None, kind="read",
       extra=irregular_fr(inf="comprendre", fin="comprends comprend comprenez", pp="compris")),
    # COMPOSE
    *(fr(v, W, kind="compose") for v in (
        "rediger composer preparer creer generer proposer suggerer formuler reformuler "
        "corriger ameliorer developper concevoir planifier imaginer esquisser brouillonner "
        "retravailler peaufiner relire modifier adapter"
    ).split()),
    fr("produire", W, kind="compose", extra=irregular_fr(inf="produire", fin="produis produit")),
    fr("reecrire", W, kind="compose",
       extra=irregular_fr(inf="reecrire", fin="reecris reecrit reecrivez", pp="reecrit")),
    fr("raccourcir", W, kind="compose",
       extra=irregular_fr(inf="raccourcir", fin="raccourcis raccourcit", pp="raccourci")),
    # LIGHT
    *(fr(v, None, kind="light") for v in (
        "effectuer proceder lancer valider confirmer approuver autoriser executer emettre "
        "programmer initier declencher finaliser realiser operer"
    ).split()),
    # GENERIC
    fr("occuper", None, _GENERIC, kind="generic", defers=True),
    fr("charger", None, _GENERIC, kind="generic", defers=True),
    fr("gerer", None, _GENERIC, kind="generic", defers=True),
    fr("traiter", None, _GENERIC, kind="generic", defers=True),
    fr("suivre", None, kind="generic", defers=True, extra=_SUIVRE),
    fr("appliquer", None, kind="generic", defers=True),
    fr("accomplir", None, kind="generic", defers=True,
       extra=irregular_fr(inf="accomplir", fin="accomplis accomplit accomplissez")),
    fr("resoudre", None, kind="generic", extra=_RESOUDRE),
    fr("utiliser", None, kind="generic"),
    fr("prendre", None, {"SUBSCRIPTION TRAVEL abonnement billet billets": P}, kind="generic",
       extra=_PRENDRE, particles={"en charge": fr("prendre en charge", None, _GENERIC,
                                                  kind="generic", defers=True)}),
    fr("aider", None, kind="generic"),
    fr("vendre", None, {_MONEY: T}, extra=_VENDRE),
    fr("rendre", None, {_MONEY: P}, kind="generic", extra=_RENDRE,
       particles={"public": fr("rendre public", S)}),
)

# -- nouns that name an action ("a payment of 50 EUR", "le virement de 200 €") ------------------
ACTION_NOUNS: Final[dict[str, Action]] = {
    **dict.fromkeys(
        """debit prelevement""".split(),
        P,
    ),
    **dict.fromkeys(
        """payment payments purchase purchases order orders refund refunds reimbursement donation
        cart basket panier
        donations deposit topup top-up renewal subscription booking bookings reservation
        reservations checkout prepayment repayment
        paiement paiements reglement reglements achat achats commande commandes remboursement
        don dons recharge renouvellement abonnement souscription reservation reservations
        cotisation""".split(),
        P,
    ),
    **dict.fromkeys(
        """transfer transfers wire wires withdrawal remittance depot
        virement virements transfert transferts versement versements retrait retraits""".split(),
        T,
    ),
    **dict.fromkeys(
        """deletion deletions removal erasure wipe purge cleanup reset cancellation termination
        suppression suppressions effacement purge nettoyage reinitialisation annulation
        resiliation""".split(),
        D,
    ),
    **dict.fromkeys(
        """mailing mailout broadcast posting publication
        envoi envois expedition diffusion partage transmission relance""".split(),
        S,
    ),
}

# Nouns that turn an action noun before them into a record to read ("payment history").
RECORD_NOUNS: Final = _words(
    """history status statuses list summary details detail report reports confirmation receipt
    receipts terms method methods date dates reference number numbers id page form button key
    option options setting settings fee fees limit limits policy log logs rate rates time
    schedule amount deadline records process procedure workflow system gateway provider api
    request requests notification notifications email emails window plan plans template
    templates speed learning queue error errors issue issues problem problems failure
    historique statut etat liste recapitulatif resume detail details releve releves
    confirmation recu recus conditions modalites moyen mode date numero reference bouton
    touche option parametre parametres frais plafond delai processus procedure delais
    modele modeles erreur erreurs probleme problemes demande demandes"""
)

# Objects that hand the request to its context: "do what the thread says".
CONTEXT_REFERENCES: Final = _words(
    """thread threads conversation document doc documents dataspace email mail message messages
    note notes instructions instruction action actions items item tasks task todos todo to-dos
    requests request asks demands steps points list checklist above below following minutes
    says asks wants requested asked instructed described indicated listed mentioned
    fil conversation document mail message messages note notes instructions consignes actions
    taches tache demandes demande points etapes liste ci-dessus ci-dessous suivantes suivants
    demande demandees demandes indique indiquees ecrit prevu prevues convenu"""
)

"""Framing words: the little words around a verb that decide whether it is an order.

"Delete it" orders; "how do I delete it?" asks; "don't delete it" forbids; "who deleted it?"
reports; "write an email asking Bob to delete it" drafts. Lane A finds the action words with
``nova.domain.intent.lexicon`` and then reads these frames around them. Sequences are folded
tokens as ``nova.domain.intent.tokens`` produces them ("dois-je" is "dois", "je"; "don't" is
"do", "n't"); ``*`` matches any one token.
"""

from __future__ import annotations

from typing import Final


def _w(text: str) -> frozenset[str]:
    return frozenset(text.split())


def _seqs(text: str) -> tuple[tuple[str, ...], ...]:
    """One sequence per line."""
    return tuple(tuple(line.split()) for line in text.strip().splitlines() if line.strip())


# Words that may open a clause without changing its mood ("please", "ok so", "Nova,").
FILLERS: Final = _w(
    """please pls plz kindly ok okay so now hey hi hello yo right alright also then just quickly
    asap urgently urgent immediately finally first next oh well hmm um uh nova assistant bot ai
    dear thanks thank yes yeah yep sure cool great perfect fine good actually really simply
    today tonight tomorrow again still soon straight away right away anyway btw fyi ps
    merci stp svp s'il te plait plait vous bon alors allez maintenant aussi juste vite et puis
    ensuite enfin bref hop tiens euh donc voila coucou salut bonjour oui ouais ok parfait super
    franchement vraiment simplement aujourd'hui demain ce soir rapidement urgence d'urgence
    encore deja tout de suite direct directement d'abord premierement stp svp svp"""
)

SUBJECTS_SELF: Final = _w("i we je j' nous on")
SUBJECTS_YOU: Final = _w("you u tu vous")
SUBJECTS_OTHER: Final = _w(
    """he she it they who someone somebody anyone anybody everyone everybody nobody one people
    il elle ils elles qui quelqu'un personne ca cela c' ce"""
)

# Auxiliaries and modals, by what they do to the verb after them.
AUX_PAST: Final = _w(
    """was were been has have had did ai as a avons avez ont avait avais avaient eu ete etait
    etaient fut est sont suis es sommes etes"""
)
AUX_PASSIVE: Final = _w("be been being is are was were get got gets getting etre ete soit soient")
MODAL_ORDER: Final = _w(
    """will would shall should must can could need needs needed gotta wanna gonna going ought
    have has had to might may
    peux peut pouvez pouvons peuvent pourrais pourrait pourriez pourrions pouvais pouvait
    pouviez voulais voulait devais devait dois doit devez
    devons doivent devrais devrait devriez faut faudrait veux veut voulez voudrais voudrait
    voudriez aimerais aimerait souhaite souhaiterais vais vas va allons allez vont dois"""
)
# What a first person says when it asks for something rather than reports it.
SELF_WISH: Final = _w(
    """want wants need needs would like 'd gotta wanna must have has to require request
    veux voudrais voudrions aimerais aimerions souhaite souhaiterais souhaitons dois devons
    devrais faut compte besoin"""
)
DETERMINERS: Final = _w(
    """the a an my your his her its our their this that these those some any every each no 's
    le la les l' un une des du de d' mon ma mes ton ta tes son sa ses notre nos votre vos leur
    leurs ce cet cette ces quelques chaque aucun aucune"""
)
PREPOSITIONS: Final = _w(
    "about of for on by in like with into from regarding concerning au aux sur pour"
)
INFINITIVE_MARKERS: Final = _w("to de d' a pour")

# Verbs whose negation is an order: "don't forget to pay", "n'hésite pas à supprimer".
POSITIVE_AFTER_NEGATION: Final = _w(
    """forget forgetting fail hesitate wait delay neglect put hold
    oublie oublier oubliez oublies hesite hesiter hesitez tarde tarder tardez manque manquer
    manquez attends attendre attendez traine trainer trainez"""
)
# Verbs a negation passes through to the verb they govern: "I don't want you to send it".
NEGATION_CHAIN: Final = _w(
    """want need like wish intend plan mean ask try think going point use sense question
    besoin peine faut faudrait faudra
    veux vouloir voudrais souhaite souhaiter demande demander aimerais compte penses pense"""
)
NEGATIONS: Final = _w(
    """n't not never no without stop avoid refrain neither nor quit cease instead rather
    ne n' jamais sans rien aucun aucune inutile evite evitez eviter arrete arretez arreter ni
    plutot pas"""
)
# After a verb, these close a negation ("supprime pas", "delete nothing").
NEGATION_AFTER: Final = _w("pas jamais rien plus point nothing none aucun aucune")
# Tokens a negation or a mood may sit across without losing its verb.
SKIP: Final = _w(
    """be even ever yet just really actually please also immediately now still quite
    it them this that me him her us you to
    le la les l' lui leur me m' te t' se s' y en nous vous pas encore plus vraiment surtout
    jamais trop de d' a"""
)

# Question words that may also open a subordinate clause ("when it arrives, pay it"): they
# ask only in a question or before an inverted auxiliary.
WH_WORDS: Final = _w("how what whats why when where which who whom whose hows quand comment ou")
INFO_OPENERS: Final = _seqs(
    """
    how
    what
    whats
    why
    when
    where
    which
    who
    whom
    whose
    hows
    is it
    is there
    are there
    would it be safe
    is this
    are these
    should i
    should we
    shall i
    shall we
    do i
    do we
    does it
    does this
    does that
    does anyone
    did i
    did we
    did he
    did she
    did they
    did it
    did someone
    did anyone
    did anybody
    did you
    have i
    have we
    have they
    have you
    has it
    has he
    has she
    has anyone
    has someone
    has this
    can i
    can we
    could i
    may i
    am i
    was it
    was this
    were they
    will it
    will this
    will that
    do you know
    do you think
    any idea
    i wonder
    tu crois que
    tu penses que
    vous pensez que
    vous croyez que
    selon toi
    selon vous
    a ton avis
    a votre avis
    d' apres toi
    i'm wondering
    am wondering
    i am wondering
    wondering
    curious
    explain
    describe
    define
    clarify
    tell me about
    tell me how
    tell me what
    tell me why
    tell me whether
    tell me if
    tell me when
    tell me where
    tell me which
    tell me who
    walk me through
    help me understand
    teach me
    show me how
    in what cases
    difference between
    comment
    pourquoi
    quand
    quel
    quelle
    quels
    quelles
    combien
    qu' est ce
    qu' est
    c' est quoi
    est ce que je
    est ce que j'
    est ce que on
    est ce que il
    est ce que elle
    est ce que c'
    est ce que ca
    est ce que ils
    est ce que nous
    est ce qu'
    dois je
    faut il
    puis je
    peut on
    est il
    y a il
    ai je
    avons nous
    explique
    expliquez
    expliquer
    explique moi
    decris
    decrivez
    definis
    dis moi comment
    dis moi pourquoi
    dis moi ce
    dis moi si
    dis moi quel
    dis moi quelle
    dis moi quand
    que signifie
    que veut dire
    que se passe
    que faire
    que dois je
    a quoi
    je me demande
    aide moi a comprendre
    montre moi comment
    """
)

# Frames that only ever ask (anywhere in a clause): "explain how to pay", "what happens if I pay".
INFO_ANYWHERE: Final = _seqs(
    """
    how to
    how do
    how does
    how can
    how could
    how would
    how should
    how did
    how much
    how many
    how long
    what happens
    what would happen
    what if
    whether to
    what to
    where to
    when to
    how i
    how we
    how you
    is it safe
    is it possible to know
    is it legal
    is it normal
    is it wise
    is it worth
    is it a good idea
    is it better
    should i
    should we
    do i need to
    do we need to
    do i have to
    meaning of
    pros and cons
    difference between
    the steps to
    steps to
    the process to
    the best way to
    best way to
    better to
    is it better
    mieux de
    vaut mieux
    vaut il mieux
    preferable de
    the right way to
    tips for
    tips on
    advice on
    explain
    comment faire pour
    comment on
    comment je
    comment puis je
    comment fonctionne
    comment marche
    comment se passe
    comment ca marche
    que se passe
    qu' est ce qui se passe
    est ce qu' il faut
    faut il
    dois je
    la difference entre
    conseils pour
    les etapes pour
    la meilleure facon de
    la marche a suivre pour
    explique
    expliquer
    """
)

# Frames that ask for the verb after them to be done.
REQUEST_FRAMES: Final = _seqs(
    """
    any chance you can
    any chance you could
    any chance u can
    any chance u could
    je te laisse
    je vous laisse
    i 'll let you
    i will let you
    i leave it to you to
    je te charge de
    ca te derangerait
    ca vous derangerait
    cela vous derangerait
    ca t' embeterait
    auriez vous l' amabilite
    aurais tu l' amabilite
    auriez vous la gentillesse
    aurais tu la gentillesse
    serais tu assez gentil
    tu serais gentil
    tu serais sympa
    vous seriez aimable
    would you be so kind
    would you be able to
    could you be so kind
    be so kind as to
    would you be kind enough to
    can you
    could you
    would you
    will you
    can u
    could u
    would u
    would you mind
    do you mind
    i want you to
    i need you to
    i would like you to
    i want to
    you should
    you need to
    you must
    you have to
    you will
    you 're going to
    you are going to
    let us
    it is time to
    time to
    help me
    help me to
    i am asking you to
    i ask you to
    try to
    would it be possible to
    is it possible to
    could we
    can we
    why don't you
    why not
    how about you
    make sure
    make sure to
    be sure to
    remember to
    go ahead and
    feel free to
    i'd appreciate it if you
    i would appreciate it if you
    need you to
    peux tu
    tu peux
    tu pourrais
    pourrais tu
    pourriez vous
    pouvez vous
    vous pouvez
    vous pourriez
    voudrais tu
    veux tu
    tu veux bien
    je veux que tu
    je voudrais que tu
    j' aimerais que tu
    j' aimerais bien que tu
    il faut que tu
    il faudrait que tu
    merci de
    je te demande de
    je vous demande de
    veuillez
    priere de
    pense a
    tu dois
    vous devez
    tu vas
    je compte sur toi pour
    essaie de
    aide moi a
    fais en sorte de
    arrange toi pour
    ce serait bien de
    il est temps de
    est il possible de
    serait il possible de
    est ce que tu peux
    est ce que vous pouvez
    est ce que tu pourrais
    tu me
    j' ai besoin que tu
    """
)

# Frames in which the user states their own wish or obligation: an order to Nova unless the
# prompt goes on to ask a question ("I need to send a CV tomorrow: how long should it be?").
WISH_FRAMES: Final = _seqs(
    """
    il convient de
    il faudra
    il y a lieu de
    il est necessaire de
    il est urgent de
    it is necessary to
    it 's necessary to
    it is urgent to
    it 's urgent to
    j' ai besoin que
    il serait temps de
    il serait peut-etre temps de
    il est grand temps de
    it 's about time
    it 's time to
    it is high time
    high time
    i want to
    i need to
    i would like to
    i wanna
    i gotta
    i have to
    i must
    we need to
    we must
    we have to
    we should
    we gotta
    need to
    have to
    got to
    gotta
    je veux
    je voudrais
    j' aimerais
    je souhaite
    je souhaiterais
    je dois
    on doit
    on va
    nous devons
    il faut
    il faudrait
    faut
    faudrait
    j' ai besoin de
    """
)

# Wishes about an outcome: whatever action follows is wished for, whatever its tense ("wouldn't
# it be nice if someone finally paid the nanny", "ce serait top si Maman recevait les photos").
HINT_FRAMES: Final = _seqs(
    """
    it would be a shame if
    it would be a pity if
    ce serait dommage que
    ce serait dommage si
    il serait dommage que
    i would be grateful if
    i would appreciate it if
    it would help if
    je serais reconnaissant si
    je te serais reconnaissant de
    je vous serais reconnaissant de
    je serais ravi si
    je serais ravie si
    make sure
    make sure that
    ensure
    ensure that
    see to it that
    fais en sorte que
    faites en sorte que
    assure toi que
    assurez vous que
    veille a ce que
    veillez a ce que
    would it be nice if
    wouldn't it be nice if
    would n't it be nice if
    would n't it be great if
    it would be nice if
    it would be great if
    it would be good if
    it would be nice if
    it would be nice to
    it would be great to
    i would love it if
    i would love it if
    i wish
    if only
    ce serait top si
    ce serait top de
    ce serait bien de
    ce serait genial de
    ce serait super de
    ca serait top de
    ca serait bien de
    ce serait bien si
    ce serait bien que
    ce serait top que
    ce serait genial si
    ce serait super si
    ce serait cool si
    ce serait sympa si
    ca serait bien que
    ca serait bien si
    ca serait top si
    ca serait ben l' fun que
    ce serait ben l' fun que
    ca serait le fun que
    ce serait le fun que
    j' aimerais bien que
    j' aimerais que
    si seulement
    """
)

# The same, only when the clause opens with them: "Que mon abonnement s'arrête ce mois-ci."
HINT_OPENERS: Final = _seqs(
    """
    que mon
    que ma
    que mes
    que le
    que la
    que les
    que l'
    qu' il
    qu' elle
    """
)

# "Do it", "go ahead", "vas-y": execute whatever risky action the prompt mentioned.
EXECUTE_PHRASES: Final = _seqs(
    """
    same again
    same thing
    et pareil
    same for
    finish the job
    finish it
    finish off
    finis le boulot
    finis le travail
    finis
    termine le boulot
    termine
    fais pareil
    fais de meme
    continue
    keep going
    the same
    do the same
    do it again
    again
    repeat it
    repeat that
    idem
    pareil
    la meme chose
    meme chose
    refais
    refaites
    refais le
    refais la
    recommence
    recommencez
    do it
    do that
    do this
    do so
    go ahead
    go for it
    proceed
    make it happen
    get it done
    execute it
    execute
    carry it out
    ship it
    let us do it
    just do it
    confirm
    confirm it
    approved
    yes do it
    vas y
    allez y
    fais le
    fais la
    fais les
    fais ca
    faites le
    procede
    procedez
    execute le
    executez
    go
    lance
    valide
    confirme
    """
)

# Objects that make "do/handle/follow" refer to the request's context.
CONTEXT_DEFERRAL: Final = _seqs(
    """
    what it says
    what they say
    what he says
    what she says
    what it asks
    what they ask
    what he asks
    what she asks
    what is asked
    what is requested
    what was requested
    what was asked
    what the thread says
    what the email says
    what the message says
    what the document says
    what the note says
    whatever it says
    as requested
    as asked
    as instructed
    as described
    as indicated
    as discussed
    as agreed
    as mentioned
    as listed
    action items
    action points
    the requests
    the instructions
    the tasks
    the to dos
    the todos
    ce qui est demande
    ce qui est ecrit
    ce qui est indique
    ce qui est prevu
    ce qu' il demande
    ce qu' elle demande
    ce qu' ils demandent
    ce qu' on me demande
    ce que demande
    tout ce qui est demande
    comme demande
    comme indique
    comme convenu
    comme prevu
    les demandes
    les instructions
    les consignes
    les taches
    les actions
    les points d' action
    """
)

# Causative heads: "get it paid", "I want these deleted", "que ce soit supprimé".
CAUSATIVE: Final = _w("get got have has want wants need needs like make ensure see soit soient que")

# Time expressions: nouns that do not make the next verb a noun ("this time pay him").
TEMPORAL: Final = _w(
    """time times week weeks month months year years day days morning afternoon evening night
    weekend today tomorrow tonight yesterday monday tuesday wednesday thursday friday saturday
    sunday january february march april june july august september october november december
    noon midnight asap later first next last this
    fois semaine semaines mois an annee annees jour jours matin apres-midi soir soiree nuit
    lundi mardi mercredi jeudi vendredi samedi dimanche janvier fevrier mars avril mai juin
    juillet aout septembre octobre novembre decembre midi minuit"""
)
# Auxiliaries that open a yes/no question: "Does moving notes keep their tags?"
AUX_QUESTION: Final = _w(
    """do does did is are was were has have had can could will would should shall may might
    must am est-ce"""
)
# Verbs whose negation asks to get rid of something: "don't keep these screenshots".
KEEP_VERBS: Final = _w(
    "keep save retain preserve store hold garde garder gardez conserve conserver conservez"
)

# A retraction cancels the orders before it: "sync the lists -- oh wait, just show me both".
RETRACTIONS: Final = _seqs(
    """
    oh wait
    wait no
    actually no
    actually never mind
    scratch that
    forget that
    forget it
    never mind
    nevermind
    on second thought
    en fait non
    non attends
    laisse tomber
    oublie ca
    finalement non
    tout compte fait non
    """
)
# Nouns of drafted content: "un brouillon de mail pour relancer le client" drafts the follow-up.
DRAFT_NOUNS: Final = _w(
    """draft drafts template templates brouillon brouillons modele modeles ebauche proposal
    proposition script"""
)

# Words that say a stale object is to be got rid of: "deal with the old backups".
STALE: Final = _w(
    """old older oldest outdated obsolete stale unused junk useless leftover leftovers expired
    spam trash
    duplicate duplicates dupes redundant temporary temp
    vieux vieille vieilles vieil anciens anciennes ancien ancienne inutiles inutile perimes
    perimees doublons obsoletes obsolete temporaires"""
)

# Verbs that, governing a "to"-infinitive, make it an order (purpose or wish).
# Past verbs governing an infinitive report what happened: "I forgot to buy milk".
PAST_GOVERNORS: Final = _w(
    """forgot wanted needed tried meant planned decided intended hoped had used managed failed
    refused promised started stopped began oublie voulu essaye prevu decide commence"""
)
ORDER_GOVERNORS: Final = _w(
    """want need like wish remember forget try use help able time going got gotta have has
    must should ought plan intend decide agree hurry rush
    veux voudrais aimerais souhaite dois faut pense essaie aide utilise compte oublie
    oublier oubliez besoin mind"""
)
# Verbs that, governing a "to"-infinitive, make it content of a message: "ask Bob to pay".
CONTENT_GOVERNORS: Final = _w(
    """ask asks asking asked tell telling told remind reminding invite inviting urge urging
    request requesting beg demand demanding encourage encouraging advise advising
    demande demander demandant rappelle rappeler dis dire invite inviter encourage
    conseille"""
)
